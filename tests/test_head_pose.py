"""Head-pose angles against scipy's rotation conversions (an independent implementation)."""
import numpy as np
from scipy.spatial.transform import Rotation

from util.face.head_pose import head_pose_deg
from util.face.landmarks import yaw_from_pose


def scipy_angles(rotvecs):
    """(N,3) axis-angle -> (N,3) (yaw, pitch, roll): the rotation after a frontal Rx(180),
    as intrinsic Z-Y-X angles (R = Rz(roll) Ry(yaw) Rx(pitch)), computed by scipy."""
    head = Rotation.from_euler('x', 180, degrees=True) * Rotation.from_rotvec(rotvecs)
    roll, yaw, pitch = head.as_euler('ZYX', degrees=True).T
    return np.stack([yaw, pitch, roll], axis=1)


def test_random_rotations_match_scipy():
    rng = np.random.default_rng(0)
    # heads within +-80 degrees of frontal (away from the gimbal lock at yaw = +-90)
    angles = rng.uniform(-80, 80, (500, 3))  # (roll, yaw, pitch)
    rotvecs = (Rotation.from_euler('x', 180, degrees=True).inv()
               * Rotation.from_euler('ZYX', angles, degrees=True)).as_rotvec()
    ours = head_pose_deg(rotvecs)
    np.testing.assert_allclose(ours, scipy_angles(rotvecs), atol=1e-9)
    # built as (roll, yaw, pitch) -> read back as (yaw, pitch, roll)
    np.testing.assert_allclose(ours, angles[:, [1, 2, 0]], atol=1e-9)


def test_frontal_face_is_zero_and_signs_follow_the_image():
    np.testing.assert_allclose(head_pose_deg([[np.pi, 0, 0]]), [[0, 0, 0]], atol=1e-12)
    frontal = Rotation.from_rotvec([np.pi, 0, 0])
    for axis, index in (('y', 0), ('x', 1), ('z', 2)):
        for angle in (-50., -10., 10., 50.):
            # one axis of a viewer frame (x right, y up, z toward the viewer) = FLAME's frame
            rot = frontal * Rotation.from_euler(axis, angle, degrees=True)
            angles = head_pose_deg([rot.as_rotvec()])[0]
            assert abs(angles[index] - angle) < 1e-9 and np.abs(np.delete(angles, index)).max() < 1e-9
            # what the sign means in the image (camera frame: x right, y down, z away)
            forward, up = rot.apply([0., 0., 1.]), rot.apply([0., 1., 0.])
            if axis == 'y':    # yaw > 0: the face looks toward the image's right
                assert np.sign(forward[0]) == np.sign(angle)
            elif axis == 'x':  # pitch > 0: it looks down
                assert np.sign(forward[1]) == np.sign(angle)
            else:              # roll > 0: counter-clockwise, the top of the head goes left
                assert np.sign(up[0]) == -np.sign(angle)


def test_dynamic_contour_yaw_is_the_head_yaw():
    rotvecs = np.random.default_rng(2).normal(0, 0.5, (200, 3)) + [np.pi, 0, 0]
    pose6 = np.concatenate([rotvecs, np.zeros((200, 3))], axis=1)
    np.testing.assert_allclose(yaw_from_pose(pose6), head_pose_deg(rotvecs)[:, 0], atol=1e-9)
