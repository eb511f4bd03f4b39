"""Align a predicted mesh to a NoW scan (docs/formats.md §17): a similarity from the 7
landmark pairs (Procrustes, reflection allowed, as the official code), then scale, rotation
and translation refined to minimise the sum of squared scan-to-mesh distances.

A transform is (scale, rotation, translation): x = scale * rotation @ v + translation, with
``rotation`` (3,3) orthogonal (a reflection is possible after Procrustes).
"""
import numpy as np

from smpl_webuser.lbs import rodrigues

UNIT_TO_MM = {'mm': 1.0, 'cm': 10.0, 'm': 1000.0}


def procrustes(target, source, scaling=True):
    """target (K,3), source (K,3) corresponding points -> (scale, rotation (3,3), translation
    (3,)) minimising sum |target_k - (scale * rotation @ source_k + translation)|^2 over
    orthogonal rotations (reflections allowed) and, with ``scaling``, scale > 0 (else 1).

    Closed form: the centred cross-covariance H = S0^T T0 = U diag(sigma) V^T gives the
    rotation V U^T and the scale sum(sigma) / |S0|^2.
    """
    target = np.asarray(target, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    t_mean, s_mean = target.mean(axis=0), source.mean(axis=0)
    t0, s0 = target - t_mean, source - s_mean
    u, sigma, vt = np.linalg.svd(s0.T @ t0)
    rotation = vt.T @ u.T
    spread = float(np.sum(s0 ** 2))
    if not spread > 0:
        raise ValueError('the landmarks all coincide; no alignment is defined')
    scale = float(sigma.sum() / spread) if scaling else 1.0
    return scale, rotation, t_mean - scale * rotation @ s_mean


def apply(transform, points):
    """transform (scale, rotation, translation), points (N,3) -> (N,3) transformed."""
    scale, rotation, translation = transform
    return scale * np.asarray(points, dtype=np.float64) @ np.asarray(rotation).T + translation


def landmark_alignment(scan_landmarks, mesh_landmarks, metrical_scale=None):
    """The initial transform from the 7 landmark pairs. ``metrical_scale`` (scan units per
    prediction unit, e.g. 1000 for metres onto a mm scan) fixes the scale instead of fitting
    it; the translation is then the best one for that scale."""
    if metrical_scale is None:
        return procrustes(scan_landmarks, mesh_landmarks)
    _, rotation, _ = procrustes(scan_landmarks, mesh_landmarks, scaling=False)
    translation = (np.mean(scan_landmarks, axis=0)
                   - metrical_scale * rotation @ np.mean(mesh_landmarks, axis=0))
    return float(metrical_scale), rotation, translation


def _jacobian(scan, closest, dist, centre, with_scale):
    """d dist_i / d (log-scale, rotation vector, translation) of an update applied about
    ``centre`` to the aligned mesh: (N,7), or (N,6) without the scale column.

    dist_i = |closest_i - scan_i|; moving the surface point w by dw changes it by n . dw
    (n the unit direction scan -> surface; the closest point may slide, which changes the
    distance only to second order). Points on the surface (dist 0) get a zero row.
    """
    n = closest - scan
    with np.errstate(invalid='ignore', divide='ignore'):
        n = np.where(dist[:, None] > 0, n / dist[:, None], 0.0)
    arm = closest - centre
    cols = [np.cross(arm, n), n]
    if with_scale:
        cols.insert(0, np.sum(n * arm, axis=1, keepdims=True))
    return np.concatenate(cols, axis=1)


def _updated(transform, step, centre):
    """transform, step (7,) (log-scale, rotation vector, translation) -> the transform
    followed by the step's similarity about ``centre``."""
    scale, rotation, translation = transform
    factor = float(np.exp(step[0]))
    rot = rodrigues(step[1:4][None])[0]
    return (scale * factor, rot @ rotation,
            factor * rot @ (translation - centre) + centre + step[4:])


def refine(scan_distance, transform, with_scale=True, max_iterations=100, tolerance=1e-10):
    """Levenberg-Marquardt on sum_i dist_i^2 (scan vertex i to the transformed mesh's
    surface), from ``transform`` -> (transform, dist (N,) at it, iterations).

    ``scan_distance``: util.now.distance.ScanDistance of the scan vertices and the mesh.
    ``with_scale=False`` keeps the scale (the metrical protocol). Stops when a step lowers the
    cost by less than ``tolerance`` relative, or no step lowers it.
    """
    scan = scan_distance.points
    centre = scan.mean(axis=0)
    dist, _, closest = scan_distance.distances(*transform)
    cost = float(dist @ dist)
    damping = 1e-3
    iterations = 0
    while iterations < max_iterations and cost > 0:
        iterations += 1
        jac = _jacobian(scan, closest, dist, centre, with_scale)
        jtj, jtr = jac.T @ jac, jac.T @ dist
        improved = False
        while damping < 1e12:
            lhs = jtj + damping * np.diag(np.maximum(np.diag(jtj), 1e-12))
            step = -np.linalg.solve(lhs, jtr)
            trial = _updated(transform, step if with_scale else np.concatenate([[0.0], step]),
                             centre)
            t_dist, _, t_closest = scan_distance.distances(*trial)
            t_cost = float(t_dist @ t_dist)
            if t_cost < cost:
                improved = True
                break
            damping *= 10.0
        if not improved:
            break
        gain = (cost - t_cost) / cost
        transform, dist, closest, cost = trial, t_dist, t_closest, t_cost
        damping = max(damping / 10.0, 1e-9)
        if gain < tolerance:
            break
    return transform, dist, iterations
