"""Batched numpy FLAME / SMPL forward pass: shape and pose blendshapes plus linear blend skinning.

Shapes: N batch, V vertices, J joints, K shape components, P = 9 (J - 1) pose-blendshape
features. Everything is float64 and vectorised; the only loop is over the J joints of the chain.
"""
import numpy as np
import scipy.sparse as sp


def _skew(vecs):
    """(N, 3) -> (N, 3, 3) cross-product matrices [v]x."""
    x, y, z = vecs[:, 0], vecs[:, 1], vecs[:, 2]
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1).reshape(-1, 3, 3)


def rodrigues(rot_vecs):
    """Axis-angle (N, 3) -> rotation matrices (N, 3, 3).

    R = I + a K + b K^2 with K = [r]x, a = sin(t) / t, b = (1 - cos(t)) / t^2, t = |r|. Written
    with np.sinc, both factors are accurate for small angles and R is exactly I for r = 0.
    """
    rot_vecs = np.asarray(rot_vecs, dtype=np.float64).reshape(-1, 3)
    angle = np.linalg.norm(rot_vecs, axis=1)
    a = np.sinc(angle / np.pi)
    b = 0.5 * np.sinc(angle / (2.0 * np.pi)) ** 2  # (1 - cos t) / t^2 = 2 sin^2(t/2) / t^2
    k = _skew(rot_vecs)
    return np.eye(3) + a[:, None, None] * k + b[:, None, None] * (k @ k)


def _lrotmin(rot_mats):
    """(N, J, 3, 3) -> (N, (J - 1) * 9): (R_j - I) row-major for joints 1..J-1."""
    n = rot_mats.shape[0]
    return (rot_mats[:, 1:] - np.eye(3)).reshape(n, -1)


def pose_features(pose):
    """'lrotmin' pose-blendshape features: pose (N, J * 3) axis-angle -> (N, (J - 1) * 9)."""
    pose = np.asarray(pose, dtype=np.float64)
    n = pose.shape[0]
    return _lrotmin(rodrigues(pose).reshape(n, -1, 3, 3))


def _regress_joints(J_regressor, v_shaped):
    """J_regressor (J, V) dense or sparse, v_shaped (N, V, 3) -> joints (N, J, 3)."""
    n, v, _ = v_shaped.shape
    stacked = v_shaped.transpose(1, 0, 2).reshape(v, n * 3)  # one product for the whole batch
    joints = J_regressor @ stacked if sp.issparse(J_regressor) else \
        np.asarray(J_regressor, dtype=np.float64) @ stacked
    return np.asarray(joints).reshape(-1, n, 3).transpose(1, 0, 2)


def _chain_transforms(rot_mats, joints, parents):
    """Rest-pose-relative world transforms.

    rot_mats (N, J, 3, 3), joints (N, J, 3), parents (J,) with parents[j] < j ->
    (rotations (N, J, 3, 3), translations (N, J, 3)). Each joint rotates about its rest
    position (local translation (I - R_j) J_j), composed down the chain. This form is exactly
    the identity for a zero pose, so unposed vertices come out bit-identical.
    """
    local_t = joints - np.einsum('njab,njb->nja', rot_mats, joints)
    rots, trans = [], []
    for j, parent in enumerate(parents):
        if parent < 0:
            rots.append(rot_mats[:, j])
            trans.append(local_t[:, j])
        else:
            rots.append(rots[parent] @ rot_mats[:, j])
            trans.append(np.einsum('nab,nb->na', rots[parent], local_t[:, j]) + trans[parent])
    return np.stack(rots, axis=1), np.stack(trans, axis=1)


def lbs(betas, pose, v_template, shapedirs, posedirs, J_regressor, parents, weights, trans=None):
    """FLAME / SMPL forward pass.

    betas (N, K), K <= shapedirs.shape[2] (the first K components are used); pose (N, J * 3)
    axis-angle; v_template (V, 3); shapedirs (V, 3, K_all); posedirs (V, 3, P); J_regressor
    (J, V) dense or scipy.sparse; parents (J,) ints, -1 for the root, parents[j] < j;
    weights (V, J); trans (N, 3) or None.
    Returns verts (N, V, 3) and posed joints (N, J, 3), both translated by trans.
    Joints are regressed from the shaped template (before pose correctives).
    """
    betas = np.asarray(betas, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    n, k = betas.shape
    v = v_template.shape[0]
    if k > shapedirs.shape[2]:
        raise ValueError('lbs: %d betas given but the model has %d shape components'
                         % (k, shapedirs.shape[2]))
    if pose.shape != (n, len(parents) * 3):
        raise ValueError('lbs: pose must be (%d, %d), got %s' % (n, len(parents) * 3, pose.shape))

    # Slicing after the reshape keeps a view (no copy of the 48 MB FLAME shapedirs).
    shape_offsets = shapedirs.reshape(v * 3, -1)[:, :k] @ betas.T  # (V * 3, N)
    v_shaped = v_template + shape_offsets.T.reshape(n, v, 3)
    joints = _regress_joints(J_regressor, v_shaped)

    rot_mats = rodrigues(pose).reshape(n, -1, 3, 3)
    pose_offsets = posedirs.reshape(v * 3, -1) @ _lrotmin(rot_mats).T  # (V * 3, N)
    v_posed = v_shaped + pose_offsets.T.reshape(n, v, 3)

    rots, shifts = _chain_transforms(rot_mats, joints, parents)
    # Blend (transform - identity) so that weights not summing exactly to 1 cannot move
    # vertices of an unposed model.
    delta = np.concatenate([(rots - np.eye(3)).reshape(n, -1, 9), shifts], axis=2)  # (N, J, 12)
    blended = np.matmul(weights, delta)  # (N, V, 12)
    verts = v_posed + np.einsum('nvab,nvb->nva', blended[..., :9].reshape(n, v, 3, 3), v_posed) \
        + blended[..., 9:]
    posed_joints = np.einsum('njab,njb->nja', rots, joints) + shifts
    if trans is not None:
        trans = np.asarray(trans, dtype=np.float64).reshape(n, 1, 3)
        verts = verts + trans
        posed_joints = posed_joints + trans
    return verts, posed_joints
