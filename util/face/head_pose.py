"""Head pose angles (yaw, pitch, roll) from RingNet's global rotation (docs/formats.md §12).

RingNet's vertices are in the render camera's frame (x right, y down, z forward, §4), so a
face looking straight into the camera has the global rotation R = Rx(180°) (FLAME's y-up,
z-toward-viewer template turned upside down into the image's y-down frame). The head pose is
the rotation left once that is taken out, H = Rx(180°) @ R, read in a viewer frame (x to the
image's right, y up, z toward the viewer) as H = Rz(roll) @ Ry(yaw) @ Rx(pitch):
yaw > 0 turns the face toward the image's right, pitch > 0 tilts it down, roll > 0 turns it
counter-clockwise as seen in the image. A frontal face is (0, 0, 0).
"""
import numpy as np

from smpl_webuser.lbs import rodrigues

FRONTAL = np.diag([1., -1., -1.])  # Rx(180°): the global rotation of a frontal face


def euler_zyx(rot):
    """(N,3,3) rotations R = Rz(c) @ Ry(b) @ Rx(a) -> (N,3) radians (a, b, c), b in [-pi/2, pi/2]."""
    rot = np.asarray(rot, dtype=np.float64)
    a = np.arctan2(rot[:, 2, 1], rot[:, 2, 2])
    b = np.arctan2(-rot[:, 2, 0], np.hypot(rot[:, 0, 0], rot[:, 1, 0]))
    c = np.arctan2(rot[:, 1, 0], rot[:, 0, 0])
    return np.stack([a, b, c], axis=1)


def head_pose_deg(global_pose):
    """(N,3) axis-angle global rotations -> (N,3) degrees (yaw, pitch, roll) of the head
    relative to a frontal face (module docstring)."""
    head = FRONTAL @ rodrigues(np.asarray(global_pose, dtype=np.float64).reshape(-1, 3))
    pitch, yaw, roll = np.degrees(euler_zyx(head)).T
    return np.stack([yaw, pitch, roll], axis=1)
