"""Synthetic FLAME-format assets: a head-shaped model, its texture data and landmark embeddings.

The real FLAME files are licensed downloads; these stand-ins have the same keys, shapes, dtypes
and pickle structure (docs/formats.md §6-§8) so every loader and the whole pipeline can be exercised.
Nothing here claims to be a face model: the geometry is a lat/long grid deformed by smooth
analytic bumps, and the bases are smooth random fields.

Frame and units as FLAME: metres, y up, the face looks toward +z, origin near the head centre;
+x is the subject's left. The grid has 81 rings (polar angle theta from the top) of 62
longitudes (phi = 0 at the face, phi > 0 toward +x) plus the top pole: 5023 vertices.

    python -m synthetic.flame --out_dir DIR [--seed 0] [--n_shape 300] [--n_expr 100]

Over 300 lines on purpose: every FLAME-format file (model pickle with chumpy objects, texture
data, both landmark embeddings) is generated here, from one shared synthetic head.
"""
import argparse
import copyreg
import os
import pickle

import numpy as np
import scipy.sparse

from util.io.atomic import atomic_path
from util.face.landmarks import barycentric_points

N_LON = 62
N_RING = 81
THETA_END = np.radians(170.0)   # polar angle of the lowest (open) neck ring
UV_MIN, UV_MAX = 0.02, 0.98     # UV layout margin, so some texels are not covered
N_JOINTS = 5                    # global, neck, jaw, eye L (+x), eye R (-x)
ROOT_PARENT = 4294967295        # uint32 -1: how SMPL-family files mark the root's parent
CH_KEYS = ('v_template', 'shapedirs', 'posedirs', 'weights', 'J')
PICKLE_KEYS = ('f', 'J_regressor', 'kintree_table', 'J', 'bs_style', 'weights', 'posedirs',
               'v_template', 'shapedirs', 'bs_type')

# Face features: (theta deg, phi deg, sigma theta deg, sigma phi deg, height m, mirrored).
# Heights push along the horizontal outward direction (sin phi, 0, cos phi).
FEATURES = (
    (58.0, 0.0, 16.0, 40.0, 0.004, False),     # forehead
    (75.0, 22.0, 3.5, 13.0, 0.005, True),      # brow ridge
    (85.0, 22.0, 4.5, 10.0, -0.012, True),     # eye socket
    (86.0, 22.0, 2.5, 5.0, 0.004, True),       # eyeball bulge
    (88.0, 0.0, 8.0, 5.0, 0.008, False),       # nose bridge
    (101.0, 0.0, 5.0, 6.5, 0.020, False),      # nose
    (104.0, 8.0, 2.5, 5.0, 0.005, True),       # nostril wing
    (100.0, 35.0, 9.0, 15.0, 0.006, True),     # cheek
    (108.0, 0.0, 2.2, 14.0, 0.005, False),     # upper lip
    (111.0, 0.0, 1.2, 16.0, -0.004, False),    # mouth line
    (114.0, 0.0, 2.2, 13.0, 0.005, False),     # lower lip
    (118.0, 45.0, 10.0, 20.0, 0.008, True),    # jaw
    (90.0, 90.0, 5.0, 5.0, 0.012, True),       # ear
)
CHIN = (123.0, 0.0, 8.0, 25.0, 0.022)          # pushes forward and down: (0, -0.5, 1)

# 51 static landmarks (iBUG 68 order without the contour), (theta deg, phi deg).
STATIC_LANDMARKS = np.array([
    (78, -40), (75, -32), (74, -24), (74, -16), (76, -8),           # brow, image left
    (76, 8), (74, 16), (74, 24), (75, 32), (78, 40),                # brow, image right
    (85, 0), (90, 0), (95, 0), (101, 0),                            # nose bridge, tip last
    (104, -8), (105, -4), (105.5, 0), (105, 4), (104, 8),           # nostrils
    (85, -31), (83, -25), (83, -19), (85, -13), (87, -19), (87, -25),   # eye, image left
    (85, 13), (83, 19), (83, 25), (85, 31), (87, 25), (87, 19),     # eye, image right
    (111, -18), (108.5, -12), (107.5, -5), (108, 0), (107.5, 5), (108.5, 12),  # outer lip
    (111, 18), (114, 12), (115.5, 5), (116, 0), (115.5, -5), (114, -12),
    (111, -15), (110.3, -6), (110.5, 0), (110.3, 6), (111, 15),     # inner lip
    (111.7, 6), (111.5, 0), (111.7, -6),
], dtype=np.float64)
# iBUG 68 indices of CelebA's five landmarks (util/face/framing.py CELEBA_POINTS order): the two eye
# centres (each the mean of the eye's six points), the nose tip, the two mouth corners.
CELEBA_IBUG = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,))
CONTOUR_HALF_WIDTH = 75.0   # deg of longitude the 17-point jaw contour spans on each side at yaw 0


def _smoothstep(x, lo, hi):
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(theta, phi, t0, p0, st, sp):
    """Gaussian in (theta, phi); all angles in radians; phi distance wraps around."""
    dp = np.angle(np.exp(1j * (phi - p0)))
    return np.exp(-0.5 * ((theta - t0) / st) ** 2 - 0.5 * (dp / sp) ** 2)


def head_points(theta, phi):
    """(...) polar angles from the top, (...) longitudes (radians) -> (...,3) surface points.

    An ellipsoid (cranium and face) blends into a tube (neck) below the jaw; face features are
    Gaussian bumps along the horizontal outward direction.
    """
    theta, phi = np.broadcast_arrays(np.asarray(theta, float), np.asarray(phi, float))
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    ellipsoid = np.stack([0.076 * st * sp, 0.012 + 0.108 * ct, 0.094 * st * cp], axis=-1)
    down = np.clip((theta - np.radians(112.0)) / (THETA_END - np.radians(112.0)), 0.0, 1.0)
    neck = np.stack([0.052 * sp, -0.035 - 0.095 * down, -0.015 + 0.050 * cp], axis=-1)
    w = _smoothstep(theta, np.radians(108.0), np.radians(140.0))[..., None]
    points = (1.0 - w) * ellipsoid + w * neck

    outward = np.stack([sp, np.zeros_like(sp), cp], axis=-1)
    height = np.zeros_like(theta)
    for t0, p0, s_t, s_p, h, mirrored in FEATURES:
        for side in ((1.0, -1.0) if mirrored else (1.0,)):
            args = np.radians([t0, side * p0, s_t, s_p])
            height = height + h * _bump(theta, phi, *args)
    t0, p0, s_t, s_p, h = CHIN
    chin = h * _bump(theta, phi, *np.radians([t0, p0, s_t, s_p]))
    return (points + height[..., None] * outward
            + chin[..., None] * np.array([0.0, -0.5, 1.0]))


def grid_angles():
    """-> theta (N_RING,) ring polar angles, phi (N_LON,) longitudes; radians; phi[0] = -pi (back)."""
    theta = THETA_END * np.arange(1, N_RING + 1) / N_RING
    phi = -np.pi + 2.0 * np.pi * np.arange(N_LON) / N_LON
    return theta, phi


def _grid_faces(ring_ids, pole_ids):
    """ring_ids (N_RING, C) ids per ring/column (C = N_LON, or N_LON+1 with a seam copy),
    pole_ids (N_LON,) pole id per fan triangle -> (N_LON + 2*(N_RING-1)*N_LON, 3) faces.

    Winding (down the rings, then along +phi) makes cross(v1-v0, v2-v0) point outward.
    """
    j = np.arange(N_LON)
    j1 = (j + 1) % ring_ids.shape[1]    # wraps only when there is no seam column
    fan = np.stack([pole_ids, ring_ids[0, j], ring_ids[0, j1]], axis=1)
    a, b = ring_ids[:-1, j], ring_ids[:-1, j1]      # (N_RING-1, N_LON)
    c, d = ring_ids[1:, j], ring_ids[1:, j1]
    band = np.concatenate([np.stack([a, c, b], -1), np.stack([c, d, b], -1)], axis=1)
    return np.concatenate([fan, band.reshape(-1, 3)], axis=0)


def make_mesh():
    """-> v (5023,3) float64, f (9982,3) uint32. Vertex 0 is the top pole, then ring by ring."""
    theta, phi = grid_angles()
    grid = head_points(theta[:, None], phi[None, :])               # (N_RING, N_LON, 3)
    v = np.concatenate([head_points(0.0, 0.0)[None], grid.reshape(-1, 3)], axis=0)
    ring_ids = 1 + np.arange(N_RING * N_LON).reshape(N_RING, N_LON)
    f = _grid_faces(ring_ids, np.zeros(N_LON, dtype=np.int64))
    return v, f.astype(np.uint32)


def _uv_of_angles(theta, phi):
    """(...) theta, (...) phi (radians, phi in [-pi, pi]) -> (...,2) UV: cylindrical unwrap, seam at
    the back (phi = +-pi), top of the head at the top of the image (v = UV_MAX)."""
    u = UV_MIN + (UV_MAX - UV_MIN) * (phi + np.pi) / (2.0 * np.pi)
    v = UV_MAX - (UV_MAX - UV_MIN) * theta / THETA_END
    return np.stack(np.broadcast_arrays(u, v), axis=-1)


def make_uv():
    """-> vt (N_RING*(N_LON+1) + N_LON, 2) in [0,1], ft (F,3) with the faces of make_mesh().

    The seam column is duplicated (u = UV_MIN and u = UV_MAX); the pole gets one UV per fan
    triangle so the top row is not pinched to a single point.
    """
    theta, phi = grid_angles()
    phi = np.append(phi, np.pi)                                      # seam copy of phi = -pi
    grid = _uv_of_angles(theta[:, None], phi[None, :]).reshape(-1, 2)
    pole = _uv_of_angles(0.0, phi[:-1] + np.pi / N_LON)
    vt = np.concatenate([grid, pole], axis=0)
    ring_ids = np.arange(N_RING * (N_LON + 1)).reshape(N_RING, N_LON + 1)
    ft = _grid_faces(ring_ids, N_RING * (N_LON + 1) + np.arange(N_LON))
    return vt, ft.astype(np.uint32)


def _ring_index(theta_deg):
    """Index of the ring nearest to polar angle theta (degrees)."""
    i = int(round(np.radians(theta_deg) / THETA_END * N_RING)) - 1
    return min(max(i, 0), N_RING - 1)


def _grid_vertex(theta_deg, phi_deg):
    """Id of the grid vertex nearest to (theta, phi) in degrees (make_mesh's numbering)."""
    j = int(round((np.radians(phi_deg) + np.pi) / (2.0 * np.pi) * N_LON)) % N_LON
    return 1 + _ring_index(theta_deg) * N_LON + j


def make_joint_regressor(v):
    """(V,3) template -> J_regressor scipy.sparse.csc_matrix (5,V), rows convex combinations.

    Global and neck: the centre of a neck ring. Jaw: midway between the two jaw hinges.
    Eyes: the socket's vertices mixed with the vertex straight behind them, so the joint
    sits ~12 mm behind the socket surface (an eyeball centre) while staying a convex mix.
    """
    rows = []
    for theta_deg in (155.0, 132.0):
        first = 1 + _ring_index(theta_deg) * N_LON
        rows.append({first + j: 1.0 / N_LON for j in range(N_LON)})
    rows.append({_grid_vertex(t, p): 0.25 for t in (96.0, 100.0) for p in (-78.0, 78.0)})
    for side in (1.0, -1.0):
        socket = [_grid_vertex(t, side * p) for t in (84.0, 86.0) for p in (19.0, 25.0)]
        back = _grid_vertex(86.0, side * 158.0)   # mirrored through the x-y plane
        front = v[socket].mean(axis=0)
        t = 0.012 / np.linalg.norm(front - v[back])
        row = {k: (1.0 - t) / len(socket) for k in socket}
        row[back] = t
        rows.append(row)
    data, rr, cc = [], [], []
    for r, row in enumerate(rows):
        for c, w in sorted(row.items()):
            rr.append(r), cc.append(c), data.append(w)
    return scipy.sparse.csc_matrix((data, (rr, cc)), shape=(N_JOINTS, len(v)))


def _vertex_angles():
    """-> theta (V,), phi (V,) of make_mesh()'s vertices (the pole has theta = phi = 0)."""
    theta, phi = grid_angles()
    grid_t, grid_p = np.meshgrid(theta, phi, indexing='ij')
    return np.concatenate([[0.0], grid_t.ravel()]), np.concatenate([[0.0], grid_p.ravel()])


def _region_masks(v, J):
    """(V,3) template, (5,3) joints -> dict of (V,) smooth masks in [0,1] for skinning, the
    pose correctives and the expression bases."""
    theta, phi = _vertex_angles()
    deg = np.radians
    front = _smoothstep(np.cos(phi), np.cos(deg(85.0)), np.cos(deg(60.0)))
    eye_dist2 = ((v[:, None, :] - J[None, 3:5, :]) ** 2).sum(-1)          # (V,2)
    eyes = np.minimum(1.0, 1.5 * np.exp(-eye_dist2 / (2.0 * 0.010 ** 2)))
    expression = np.max([_bump(theta, phi, deg(111.0), 0.0, deg(10.0), deg(25.0))]
                        + [_bump(theta, phi, deg(t), s * deg(22.0), deg(st), deg(sp))
                           for t, st, sp in ((85.0, 6.0, 10.0), (75.0, 5.0, 15.0))
                           for s in (1.0, -1.0)], axis=0)
    return {
        'global': _smoothstep(theta, deg(145.0), deg(160.0)),
        'neck': _smoothstep(theta, deg(115.0), deg(130.0)) * (1 - _smoothstep(theta, deg(150.0), deg(165.0))),
        'jaw': (_smoothstep(theta, deg(109.5), deg(113.5))
                * (1.0 - _smoothstep(theta, deg(128.0), deg(140.0))) * front),
        'eye_l': eyes[:, 0],
        'eye_r': eyes[:, 1],
        'expression': expression,
    }


def make_skinning_weights(masks):
    """Region masks -> (V,5) smooth weights, rows sum to 1: lower neck -> global, jaw region
    -> jaw, eyeball-ish vertices -> eyes, the rest -> neck."""
    others = np.stack([masks['global'], masks['jaw'], masks['eye_l'], masks['eye_r']], axis=1)
    neck = np.clip(1.0 - others.sum(axis=1), 0.0, None)
    w = np.stack([others[:, 0], neck, others[:, 1], others[:, 2], others[:, 3]], axis=1)
    return w / w.sum(axis=1, keepdims=True)


def _smooth_fields(rbf, rng, n_fields, mask, peak):
    """rbf (V,M) radial basis values, (V,) mask -> (V,3,n_fields) smooth random displacement
    fields; field k's largest vertex displacement is peak / sqrt(1 + k/4) (decreasing with k)."""
    coeff = rng.standard_normal((rbf.shape[1], 3 * n_fields))
    fields = (rbf @ coeff).reshape(len(rbf), 3, n_fields) * mask[:, None, None]
    largest = np.linalg.norm(fields, axis=1).max(axis=0)                     # (n_fields,)
    return fields * (peak / np.sqrt(1.0 + np.arange(n_fields) / 4.0) / largest)


def make_flame_model(seed=0, n_shape=300, n_expr=100):
    """-> dict of FLAME's arrays (docs/formats.md §6) plus UV 'vt', 'ft'.

    v_template (5023,3) f8; f (9982,3) u4; shapedirs (5023,3,n_shape+n_expr); posedirs
    (5023,3,36); J_regressor csc (5,5023); weights (5023,5); J (5,3); kintree_table (2,5) u4;
    bs_style 'lbs'; bs_type 'lrotmin'; vt (5165,2); ft (9982,3) u4.
    The template is the same for every seed; the seed draws the bases.
    """
    rng = np.random.default_rng(seed)
    v, f = make_mesh()
    J_regressor = make_joint_regressor(v)
    J = J_regressor @ v
    masks = _region_masks(v, J)
    centres = v[rng.choice(len(v), size=150, replace=False)]
    rbf = np.exp(-((v[:, None, :] - centres[None]) ** 2).sum(-1) / (2.0 * 0.035 ** 2))
    shape = _smooth_fields(rbf, rng, n_shape, np.ones(len(v)), 0.006)
    expression = _smooth_fields(rbf, rng, n_expr, masks['expression'], 0.005)
    # pose feature columns: 9 per joint 1..4 (neck, jaw, eye L, eye R), docs/formats.md §6 'lrotmin'
    posedirs = np.concatenate([_smooth_fields(rbf, rng, 9, masks[name], 0.002)
                               for name in ('neck', 'jaw', 'eye_l', 'eye_r')], axis=2)
    vt, ft = make_uv()
    kintree = np.array([[ROOT_PARENT, 0, 1, 1, 1], np.arange(N_JOINTS)], dtype=np.uint32)
    return {
        'v_template': v, 'f': f,
        'shapedirs': np.concatenate([shape, expression], axis=2),
        'posedirs': posedirs, 'J_regressor': J_regressor,
        'weights': make_skinning_weights(masks), 'J': J, 'kintree_table': kintree,
        'bs_style': 'lbs', 'bs_type': 'lrotmin', 'vt': vt, 'ft': ft,
    }


class _ChArray(object):
    """Stands for a chumpy ``ch.array(x)`` while pickling; chumpy itself is not needed."""

    def __init__(self, x):
        self.x = x


class _ChumpyPickler(pickle._Pickler):
    """Pickler that writes _ChArray exactly as chumpy pickles a Ch: GLOBAL 'chumpy.ch Ch',
    NEWOBJ, then BUILD with the dict ``Ch.__getstate__`` returns (its __dict__ minus the
    weak-reference caches). The pure-Python pickler is used because only it lets a subclass
    name a class that is not importable."""

    def reducer_override(self, obj):
        if not isinstance(obj, _ChArray):
            return NotImplemented
        state = {'_dirty_vars': {'x'}, '_itr': None, '_make_dense': False,
                 '_make_sparse': False, '_depends_on_deps': {}, 'x': obj.x}
        return copyreg.__newobj__, (_ChArray,), state

    def save_global(self, obj, name=None):
        if obj is not _ChArray:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + b'chumpy.ch\nCh\n')
        self.memoize(obj)
        return None


def dump_with_chumpy(obj, fh, ch_keys):
    """Pickle dict ``obj`` to binary file ``fh`` with protocol 2 (like the Python-2 originals),
    the values under ``ch_keys`` written as chumpy Ch arrays."""
    wrapped = {k: (_ChArray(np.asarray(v)) if k in ch_keys else v) for k, v in obj.items()}
    _ChumpyPickler(fh, protocol=2).dump(wrapped)


def write_flame_pickle(model, path):
    """Write generic_model.pkl's structure (docs/formats.md §6) for make_flame_model()'s dict; CH_KEYS
    become chumpy arrays, J_regressor stays a scipy.sparse csc_matrix; vt/ft are left out."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        dump_with_chumpy({k: model[k] for k in PICKLE_KEYS}, fh, CH_KEYS)
    return path


def _barycentric_2d(p, a, b, c):
    """Points p (...,2), triangle corners a, b, c (...,2) -> (...,3) barycentric weights
    (signed: all >= 0 inside; corners may wind either way)."""
    def cross(u, w):
        return u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0]
    area = cross(b - a, c - a)
    l1 = cross(p - a, c - a) / area
    l2 = cross(b - a, p - a) / area
    return np.stack([1.0 - l1 - l2, l1, l2], axis=-1)


def rasterize_uv(vt, ft, img_size):
    """UV triangles -> (texel ids (N,) sorted, face ids (N,), barycentrics (N,3)) for every texel
    whose centre lies in a triangle; a texel on a shared edge goes to the lower face id.

    Texel (x, y) (column, row from the top; id = y * img_size + x) has its centre at
    UV ((x + 0.5) / S, 1 - (y + 0.5) / S).
    """
    S = img_size
    tri = np.asarray(vt, float)[np.asarray(ft, np.int64)]               # (F,3,2) UV
    tri = np.stack([tri[..., 0] * S - 0.5, (1.0 - tri[..., 1]) * S - 0.5], axis=-1)  # texel xy
    lo = np.ceil(tri.min(axis=1) - 1e-9).astype(np.int64)              # (F,2)
    hi = np.floor(tri.max(axis=1) + 1e-9).astype(np.int64)
    span = (hi - lo).max(axis=0) + 1                                    # bounding box size
    dy, dx = np.meshgrid(np.arange(span[1]), np.arange(span[0]), indexing='ij')
    x = lo[:, 0, None] + dx.ravel()                                      # (F, K) candidates
    y = lo[:, 1, None] + dy.ravel()
    bary = _barycentric_2d(np.stack([x, y], -1).astype(float), tri[:, None, 0],
                           tri[:, None, 1], tri[:, None, 2])            # (F,K,3)
    inside = ((bary.min(axis=-1) >= -1e-9) & (x <= hi[:, 0, None]) & (y <= hi[:, 1, None])
              & (x >= 0) & (x < S) & (y >= 0) & (y < S))
    face = np.broadcast_to(np.arange(len(tri))[:, None], x.shape)[inside]
    ids, first = np.unique((y * S + x)[inside], return_index=True)      # faces come in order
    bary = np.clip(bary[inside][first], 0.0, None)
    return ids, face[first], bary / bary.sum(axis=1, keepdims=True)


def make_texture_data(model, img_size=512):
    """make_flame_model()'s dict -> texture_data_512.npy's dict (docs/formats.md §7).

    x_coords, y_coords (S*S,) column / row of every texel id (id = y * S + x); the valid texels
    carry the 3D face's vertex ids and the barycentrics of the texel centre in the UV triangle.
    """
    ys, xs = np.meshgrid(np.arange(img_size), np.arange(img_size), indexing='ij')
    ids, face, bary = rasterize_uv(model['vt'], model['ft'], img_size)
    return {'img_size': img_size, 'x_coords': xs.ravel(), 'y_coords': ys.ravel(),
            'valid_pixel_ids': ids, 'valid_pixel_3d_faces': model['f'][face],
            'valid_pixel_b_coords': bary, 'vt': model['vt'], 'ft': model['ft']}


def _embed(model, angles_deg):
    """(L,2) (theta, phi) in degrees -> face ids (L,), barycentrics (L,3) of those surface points,
    found through the UV layout (make_uv maps (theta, phi) affinely to UV)."""
    uv = _uv_of_angles(*np.radians(angles_deg).T)                      # (L,2)
    tri = np.asarray(model['vt'])[np.asarray(model['ft'], np.int64)]    # (F,3,2)
    in_box = ((uv[:, None] >= tri.min(axis=1) - 1e-9)
              & (uv[:, None] <= tri.max(axis=1) + 1e-9)).all(axis=-1)   # (L,F)
    point, face = np.nonzero(in_box)
    bary = _barycentric_2d(uv[point], tri[face, 0], tri[face, 1], tri[face, 2])
    # per point, the candidate that contains it best (a point on an edge has two)
    best = np.lexsort((-bary.min(axis=1), point))
    best = best[np.unique(point[best], return_index=True)[1]]
    if len(best) != len(uv):
        raise ValueError('synthetic.flame: a landmark lies outside the UV layout')
    inside = np.clip(bary[best], 0.0, None)    # rounding: a point on an edge may be -1e-17
    return face[best], inside / inside.sum(axis=1, keepdims=True)


def make_static_embedding(model):
    """-> flame_static_embedding.pkl's dict: lmk_face_idx (51,) uint32, lmk_b_coords (51,3)."""
    faces, bary = _embed(model, STATIC_LANDMARKS)
    return {'lmk_face_idx': faces.astype(np.uint32), 'lmk_b_coords': bary}


def celeba_points(model):
    """FLAME arrays of this module's head (v_template (5023,3), f (9982,3)) -> (5,3) the
    template points of CelebA's five landmarks (CELEBA_IBUG), from the static embedding as
    util.face.landmarks places them; None for a model whose faces are not this grid (a real
    FLAME)."""
    vt, ft = make_uv()
    faces = np.asarray(model['f'])
    if faces.shape != ft.shape or not np.array_equal(faces, make_mesh()[1]):
        return None
    embedding = make_static_embedding({'vt': vt, 'ft': ft})
    static = barycentric_points(np.asarray(model['v_template'])[None], faces,
                                embedding['lmk_face_idx'], embedding['lmk_b_coords'])[0]
    return np.array([static[[k - 17 for k in ids]].mean(axis=0) for ids in CELEBA_IBUG])


def contour_angles(yaw_deg):
    """17 jaw-contour points (theta, phi) in degrees for a head yaw (the original's sign:
    positive yaw turns the face toward -x, hiding the -x side): iBUG order, image left (-x)
    to right; the side turning away shrinks toward the chin by the yaw angle."""
    lo = -CONTOUR_HALF_WIDTH + max(yaw_deg, 0.0)
    hi = CONTOUR_HALF_WIDTH - max(-yaw_deg, 0.0)
    phi = np.linspace(lo, hi, 17)
    theta = 95.0 + 31.0 * np.cos(np.radians(90.0 * phi / CONTOUR_HALF_WIDTH))
    return np.stack([theta, phi], axis=1)


def make_dynamic_embedding(model):
    """-> flame_dynamic_embedding.npy's dict: lmk_face_idx, lmk_b_coords lists of 79 arrays
    (17,) int64 and (17,3); entry k is for yaw k (k <= 39) or 39 - k (k >= 40) degrees."""
    angles = np.concatenate([contour_angles(k if k <= 39 else 39 - k) for k in range(79)])
    faces, barys = _embed(model, angles)
    return {'lmk_face_idx': list(faces.astype(np.int64).reshape(79, 17)),
            'lmk_b_coords': list(barys.reshape(79, 17, 3))}


def _save_npy_dict(path, data):
    """np.save of a dict (0-d object array), like the originals; atomic."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
        np.save(fh, data, allow_pickle=True)
    return path


def write_flame_assets(out_dir, seed=0, n_shape=300, n_expr=100):
    """Write the four synthetic FLAME files into out_dir -> {'flame_model', 'texture_data',
    'static_embedding', 'dynamic_embedding'}: paths of generic_model.pkl, texture_data_512.npy,
    flame_static_embedding.pkl, flame_dynamic_embedding.npy."""
    model = make_flame_model(seed=seed, n_shape=n_shape, n_expr=n_expr)
    paths = {'flame_model': os.path.join(out_dir, 'generic_model.pkl'),
             'texture_data': os.path.join(out_dir, 'texture_data_512.npy'),
             'static_embedding': os.path.join(out_dir, 'flame_static_embedding.pkl'),
             'dynamic_embedding': os.path.join(out_dir, 'flame_dynamic_embedding.npy')}
    write_flame_pickle(model, paths['flame_model'])
    _save_npy_dict(paths['texture_data'], make_texture_data(model))
    with atomic_path(paths['static_embedding']) as tmp, open(tmp, 'wb') as fh:
        pickle.dump(make_static_embedding(model), fh, protocol=2)
    _save_npy_dict(paths['dynamic_embedding'], make_dynamic_embedding(model))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m synthetic.flame', description=__doc__.split('\n')[0])
    parser.add_argument('--out_dir', required=True, help='folder for the four files')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--n_shape', type=int, default=300)
    parser.add_argument('--n_expr', type=int, default=100)
    args = parser.parse_args(argv)
    paths = write_flame_assets(args.out_dir, args.seed, args.n_shape, args.n_expr)
    for key in sorted(paths):
        print('%s: %s' % (key, paths[key]))


if __name__ == '__main__':
    main()
