"""The 68 FLAME landmarks of a prediction (--save_landmarks: landmarks/NAME_2d.txt and
NAME_3d.txt; --draw_landmarks: dots on the overlay), docs/formats.md §12."""
import numpy as np

from util.face.camera import project, to_camera
from util.face.landmarks import landmarks_68, yaw_from_pose
from util.outputs.naming import output_path


def landmarks_3d(pred, context):
    """(68,3) FLAME landmarks of a prediction, model coordinates (util.face.landmarks)."""
    pose = context.layout.split(pred.theta)['pose']
    static, dynamic = context.embeddings
    return landmarks_68(pred.vertices[None], context.flame.f, static, dynamic,
                        yaw_from_pose(pose[None]))[0]


def landmark_points(pred, cam, context):
    """(68,2) input pixels (through the render camera ``cam``) and (68,3) model coordinates
    of a prediction's landmarks."""
    points = landmarks_3d(pred, context)
    return project(to_camera(points, cam), cam.f, cam.c), points


def points_text(points):
    """(K,D) points -> text, one row per point, values separated by a space, written with 17
    significant digits (np.loadtxt reads back the exact float64 values)."""
    return ''.join(' '.join('%.17g' % x for x in row) + '\n'
                   for row in np.asarray(points, dtype=np.float64)).encode('ascii')


def landmark_outputs(name, pred, cam, context):
    """{landmarks/NAME_2d.txt, landmarks/NAME_3d.txt: bytes} of a frame."""
    points_2d, points = landmark_points(pred, cam, context)
    return {output_path(name, 'landmarks_2d'): points_text(points_2d),
            output_path(name, 'landmarks_3d'): points_text(points)}
