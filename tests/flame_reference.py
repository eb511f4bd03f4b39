"""FLAME inputs from RingNet's theta, written out for tests (formats §2): the reference that the
graph's own FLAME decoder and the numpy FLAME layer are checked against."""
import numpy as np

from util.model.theta import split_theta

# FLAME joints: global, neck, jaw, left eye, right eye; RingNet regresses global and jaw only.
_REGRESSED_JOINTS = (0, 2)
N_JOINTS = 5


def full_pose(pose6):
    """RingNet pose (..., 6) = global + jaw axis-angle -> FLAME pose (..., 15), other joints 0."""
    pose6 = np.asarray(pose6, dtype=np.float64)
    if pose6.ndim == 0 or pose6.shape[-1] != 3 * len(_REGRESSED_JOINTS):
        raise ValueError('pose must have 6 values (global and jaw rotation) in its last axis, '
                         'got shape %s' % (pose6.shape,))
    lead = pose6.shape[:-1]
    out = np.zeros(lead + (N_JOINTS, 3))
    out[..., list(_REGRESSED_JOINTS), :] = pose6.reshape(lead + (len(_REGRESSED_JOINTS), 3))
    return out.reshape(lead + (N_JOINTS * 3,))


def _pad(values, size, name):
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] > size:
        raise ValueError('%d %s parameters do not fit the model\'s %d'
                         % (values.shape[-1], name, size))
    padding = [(0, 0)] * (values.ndim - 1) + [(0, size - values.shape[-1])]
    return np.pad(values, padding)


def flame_betas(shape, expression, n_shape=300, n_expr=100):
    """shape (..., S), expression (..., E) -> FLAME betas (..., n_shape + n_expr) =
    [shape, zeros, expression, zeros]."""
    return np.concatenate([_pad(shape, n_shape, 'shape'),
                           _pad(expression, n_expr, 'expression')], axis=-1)


def theta_to_flame_inputs(theta, n_shape=300, n_expr=100, pose_params=6, shape_params=100,
                          expression_params=50):
    """theta (..., 159) -> (betas (..., n_shape + n_expr), pose (..., 15))."""
    parts = split_theta(theta, pose_params, shape_params, expression_params)
    return (flame_betas(parts['shape'], parts['expression'], n_shape, n_expr),
            full_pose(parts['pose']))
