"""FLAME inputs from RingNet's theta, written out for tests (formats §2), and a naive FLAME:
the references that the graph's own FLAME decoder, the numpy FLAME layer and the GLB rig are
checked against."""
import cv2
import numpy as np
import scipy.sparse as sp

from util.model.theta import split_theta

# FLAME joints: global, neck, jaw, left eye, right eye; RingNet regresses global and jaw only.
_REGRESSED_JOINTS = (0, 2)
N_JOINTS = 5
PARENTS = [-1, 0, 1, 1, 1]  # global, neck, jaw, eye L, eye R


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


def naive_flame(d, betas, pose, trans, joint_betas=None):
    """Naive single-example FLAME: 4x4 transforms down the chain, cv2.Rodrigues, vertex loop.

    d: {'v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights'}; betas (K,); pose
    (15,); trans (3,). joint_betas: regress the joints from the template shaped by these
    betas instead (default: ``betas``, as FLAME does). -> (verts (V,3), posed joints (5,3)).
    """
    def shaped(b):
        return d['v_template'] + np.tensordot(d['shapedirs'][:, :, :len(b)], b, axes=([2], [0]))

    v_shaped = shaped(betas)
    joints = np.asarray(sp.csc_matrix(d['J_regressor']).toarray()) @ \
        (v_shaped if joint_betas is None else shaped(joint_betas))
    rots = [cv2.Rodrigues(np.asarray(pose[3 * j:3 * j + 3], dtype=np.float64))[0]
            for j in range(5)]
    feature = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 5)])
    v_posed = v_shaped + np.tensordot(d['posedirs'], feature, axes=([2], [0]))
    world = []
    for j, parent in enumerate(PARENTS):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    skinning = []
    for j in range(5):
        rest = np.eye(4)
        rest[:3, 3] = -joints[j]
        skinning.append(world[j] @ rest)
    verts = np.empty_like(v_posed)
    for i in range(len(v_posed)):
        t = sum(d['weights'][i, j] * skinning[j] for j in range(5))
        verts[i] = (t @ np.append(v_posed[i], 1.0))[:3] + trans
    posed_joints = np.array([w[:3, 3] for w in world]) + trans
    return verts, posed_joints
