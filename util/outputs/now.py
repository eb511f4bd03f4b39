"""The NoW benchmark's prediction of a frame (docs/formats.md §17): OUT/NAME.obj, the neutral
mesh (the predicted shape with zero expression and zero pose, exactly neutral_mesh/NAME.obj's
content: NoW measures the identity, and an expression left in the mesh costs error), and
OUT/NAME.npy, its 7 landmarks (7,3) float64 in the mesh's coordinates (metres)."""
import numpy as np

from smpl_webuser.flame_params import neutral_vertices
from util.face.landmarks import barycentric_points
from util.outputs.naming import output_path
from util.outputs.neutral import neutral_obj
from util.outputs.params import npy_bytes

# NoW's 7 points among FLAME's 51 static landmarks: outer and inner corners of the eyes (image
# left to right), the bottom of the nose, the mouth corners
NOW_LANDMARKS = (19, 22, 25, 28, 16, 31, 37)


def now_landmarks(vertices, faces, static):
    """vertices (V,3), faces (F,3), static embedding (face_idx (51,), b_coords (51,3)) ->
    (7,3) NoW's landmarks on that mesh."""
    ids = list(NOW_LANDMARKS)
    return barycentric_points(np.asarray(vertices)[None], faces, static[0][ids],
                              static[1][ids])[0]


def now_outputs(name, shape, context):
    """{NAME.obj, NAME.npy: bytes} of a frame whose predicted shape is ``shape`` (S,)."""
    vertices = neutral_vertices(context.flame, shape)
    points = now_landmarks(vertices, context.flame.f, context.embeddings[0])
    return {output_path(name, 'now_mesh'): neutral_obj(shape, context, vertices),
            output_path(name, 'now_landmarks'): npy_bytes(np.asarray(points, dtype=np.float64))}
