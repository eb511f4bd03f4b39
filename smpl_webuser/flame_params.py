"""FLAME evaluated on RingNet's parameters (docs/formats.md §2, §5): the posed mesh of a
prediction, and the neutral (VOCA) template -- the predicted shape with zero expression, zero
pose and zero translation, i.e. the identity without the expression and head pose of the photo.
"""
import numpy as np

from smpl_webuser.serialization import load_model
from smpl_webuser.verts import FlameModel


def neutral_vertices(model, shape, n_shape=300):
    """model: FlameModel or a model dict; shape (S,) or (N, S), S <= n_shape ->
    vertices (V, 3) or (N, V, 3) of the neutral template.

    With zero pose, zero expression and zero translation FLAME reduces to
    v_template + shapedirs[:, :, :S] . shape (the zero padding up to n_shape adds nothing),
    so only that product is computed.
    """
    if not isinstance(model, FlameModel):
        model = load_model(model)
    shape = np.asarray(shape, dtype=np.float64)
    n_verts, _, n_all = model.shapedirs.shape
    if shape.shape[-1] > min(n_shape, n_all):
        raise ValueError('%d shape parameters do not fit the model\'s %d shape components'
                         % (shape.shape[-1], min(n_shape, n_all)))
    basis = model.shapedirs.reshape(n_verts * 3, n_all)[:, :shape.shape[-1]]  # (V*3, S), a view
    # einsum, not BLAS: a threaded BLAS call leaves its threads spinning, which slowed the
    # next image's network run by ~30 ms in the pipeline; this product is small anyway.
    offsets = np.einsum('ks,...s->...k', basis, shape)                         # (..., V*3)
    return model.v_template + offsets.reshape(shape.shape[:-1] + (n_verts, 3))


# FLAME's joints are global, neck, jaw, left eye, right eye; RingNet's pose is global and jaw
POSED_JOINTS = (0, 2)


def flame_vertices(model, pose, shape, expression, n_shape=300):
    """The mesh of RingNet parameters (docs/formats.md §2): pose (N,6) global and jaw
    axis-angle, shape (N,S), expression (N,E) -> vertices (N,V,3) float64 (no translation;
    the camera places it). FLAME's betas are [shape, 0 .. n_shape, expression, 0 ..], its
    pose (N,15) has neck and eyes at zero."""
    pose, shape, expression = (np.atleast_2d(np.asarray(a, dtype=np.float64))
                               for a in (pose, shape, expression))
    n = len(pose)
    n_all = model.shapedirs.shape[2]
    if shape.shape[1] > n_shape or expression.shape[1] > n_all - n_shape:
        raise ValueError('%d shape and %d expression parameters do not fit the model\'s %d '
                         'components' % (shape.shape[1], expression.shape[1], n_all))
    betas = np.zeros((n, n_all))
    betas[:, :shape.shape[1]] = shape
    betas[:, n_shape:n_shape + expression.shape[1]] = expression
    return model.forward(betas, full_pose(pose, len(model.parents)).reshape(n, -1))[0]


def full_pose(pose, n_joints):
    """RingNet's pose (N,6), global and jaw axis-angle -> FLAME's (N, n_joints, 3) axis-angle
    of every joint (neck and eyes zero), float64."""
    pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
    if pose.shape[1:] != (3 * len(POSED_JOINTS),):
        raise ValueError('the pose must have %d values (global and jaw axis-angle), got shape %s'
                         % (3 * len(POSED_JOINTS), pose.shape))
    out = np.zeros((len(pose), n_joints, 3))
    out[:, list(POSED_JOINTS)] = pose.reshape(len(pose), len(POSED_JOINTS), 3)
    return out
