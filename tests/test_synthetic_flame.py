"""synthetic.flame: the stand-in FLAME files have the originals' structure and sane content.

Expectations are computed independently: real chumpy and plain pickle/np.load read the files,
mesh and UV properties are recomputed from the arrays with naive loops or other formulas.
"""
import io
import os
import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse

from synthetic.flame import (CH_KEYS, dump_with_chumpy, make_flame_model, write_flame_assets)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARRAY_KEYS = ('v_template', 'f', 'shapedirs', 'posedirs', 'weights', 'J', 'kintree_table')


@pytest.fixture(scope='module')
def model():
    return make_flame_model(seed=0)


@pytest.fixture(scope='module')
def texture(flame_assets):
    return np.load(flame_assets['texture_data'], allow_pickle=True, encoding='latin1')[()]


def plain_pickle(path):
    with open(path, 'rb') as fh:
        return pickle.load(fh, encoding='latin1')


def test_model_pickle_loads_with_real_chumpy(flame_assets, model):
    import chumpy
    raw = plain_pickle(flame_assets['flame_model'])
    assert set(raw) == {'f', 'J_regressor', 'kintree_table', 'J', 'bs_style', 'weights',
                        'posedirs', 'v_template', 'shapedirs', 'bs_type'}
    for key in CH_KEYS:
        assert isinstance(raw[key], chumpy.ch.Ch), key
        np.testing.assert_array_equal(raw[key].r, model[key])
    for key in ('f', 'kintree_table'):
        assert raw[key].dtype == np.uint32
        np.testing.assert_array_equal(raw[key], model[key])
    assert raw['kintree_table'][0, 0] == 4294967295
    assert list(raw['kintree_table'][0, 1:]) == [0, 1, 1, 1]
    assert isinstance(raw['J_regressor'], scipy.sparse.csc_matrix)
    assert (raw['J_regressor'] != model['J_regressor']).nnz == 0
    assert (raw['bs_style'], raw['bs_type']) == ('lbs', 'lrotmin')


def test_chumpy_stand_in_writes_the_same_bytes_as_chumpy():
    import chumpy
    x = np.arange(12.0).reshape(4, 3)
    data = {'shapedirs': x, 'f': np.arange(6, dtype=np.uint32).reshape(2, 3), 'bs_type': 'lrotmin'}
    ours = io.BytesIO()
    dump_with_chumpy(data, ours, {'shapedirs'})
    reference = pickle.dumps(dict(data, shapedirs=chumpy.array(x)), protocol=2)
    assert ours.getvalue() == reference
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(ours.getvalue())]
    k = ops.index(('GLOBAL', 'chumpy.ch Ch'))
    assert [name for name, _ in ops[k + 2:k + 5]] == ['EMPTY_TUPLE', 'NEWOBJ', 'BINPUT']
    assert ops[0] == ('PROTO', 2)


def test_generation_works_without_chumpy_and_leaves_no_modules(tmp_path):
    """The CLI with chumpy made unimportable; afterwards no chumpy module is loaded."""
    code = ("import sys, runpy; sys.modules['chumpy'] = None; "
            "sys.argv = ['flame', '--out_dir', %r, '--n_shape', '4', '--n_expr', '3', '--seed', '2']; "
            "runpy.run_module('synthetic.flame', run_name='__main__'); "
            "assert not any(m.startswith('chumpy') and sys.modules[m] is not None "
            "for m in sys.modules), 'chumpy imported'" % str(tmp_path))
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = ['flame_dynamic_embedding.npy', 'flame_static_embedding.pkl', 'generic_model.pkl',
             'texture_data_512.npy']
    assert sorted(os.listdir(tmp_path)) == names   # no temporary files left behind
    for name in names:
        assert str(tmp_path / name) in proc.stdout
    assert plain_pickle(str(tmp_path / 'generic_model.pkl'))['shapedirs'].shape == (5023, 3, 7)


def test_project_loaders_read_the_same_arrays(flame_assets, model, texture):
    from smpl_webuser.serialization import load_model_arrays
    from util.io.safe_pickle import load_npy, load_pickle
    arrays = load_model_arrays(flame_assets['flame_model'])
    for key in ARRAY_KEYS[:-1]:
        np.testing.assert_array_equal(arrays[key], model[key])
    assert list(arrays['parents']) == [-1, 0, 1, 1, 1]    # the loader reads the uint32 root
    np.testing.assert_array_equal(np.asarray(scipy.sparse.csr_matrix(arrays['J_regressor']).todense()),
                                  model['J_regressor'].toarray())
    ours = load_npy(flame_assets['texture_data'])[()]
    assert sorted(ours) == sorted(texture)
    for key in texture:
        np.testing.assert_array_equal(ours[key], texture[key])
    static = load_pickle(flame_assets['static_embedding'])
    reference = plain_pickle(flame_assets['static_embedding'])
    for key in ('lmk_face_idx', 'lmk_b_coords'):
        np.testing.assert_array_equal(static[key], reference[key])


def test_same_seed_same_bytes_other_seed_other_bases(flame_assets, tmp_path):
    again = write_flame_assets(str(tmp_path), seed=0)
    for key, path in flame_assets.items():
        with open(path, 'rb') as a, open(again[key], 'rb') as b:
            assert a.read() == b.read(), key
    other = make_flame_model(seed=1, n_shape=5, n_expr=5)
    first = make_flame_model(seed=0, n_shape=5, n_expr=5)
    assert not np.allclose(other['shapedirs'], first['shapedirs'])


def test_head_mesh_shape_scale_and_frame(model):
    v, f = model['v_template'], model['f'].astype(np.int64)
    assert v.shape == (5023, 3) and v.dtype == np.float64
    assert abs(len(f) - 9976) < 0.01 * 9976
    assert np.array_equal(np.unique(f), np.arange(5023))
    size = v.max(axis=0) - v.min(axis=0)
    assert 0.2 <= size[1] <= 0.3 and 0.13 <= size[0] <= 0.19        # height, width (m)
    assert np.linalg.norm(v.mean(axis=0)) < 0.05                     # origin near the centre
    tip = v[np.argmax(v[:, 2])]                                      # nose tip: front, middle
    assert abs(tip[0]) < 1e-3 and 0.09 < tip[2] < 0.15 and abs(tip[1]) < 0.04


def test_faces_wound_consistently_and_outward(model):
    v, f = model['v_template'], model['f'].astype(np.int64)
    edges = {}
    for face in f:
        for k in range(3):
            edge = (face[k], face[(k + 1) % 3])
            assert edge not in edges, 'directed edge used twice: inconsistent winding'
            edges[edge] = True
    boundary = [e for e in edges if (e[1], e[0]) not in edges]
    assert len(boundary) == 62                                       # open neck only
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(axis=1)
    axis = np.stack([np.zeros(len(f)), centre[:, 1], np.full(len(f), v[:, 2].mean())], axis=1)
    assert np.mean(np.sum(normal * (centre - axis), axis=1) > 0) > 0.99


def test_joints_weights_and_regressor(model):
    v, J, R, w = model['v_template'], model['J'], model['J_regressor'], model['weights']
    dense = R.toarray()
    assert R.shape == (5, 5023) and (dense >= 0).all() and R.nnz < 500
    np.testing.assert_allclose(dense.sum(axis=1), 1.0)
    np.testing.assert_allclose(dense @ v, J, atol=1e-12)
    assert J[0, 1] < J[1, 1] < J[2, 1] < J[3, 1]                      # global < neck < jaw < eyes
    np.testing.assert_allclose(J[3] * [-1, 1, 1], J[4], atol=1e-9)  # eyes mirror each other
    assert 0.02 < J[3, 0] < 0.04 and J[3, 2] < v[:, 2].max() - 0.03  # eye L at +x, inside
    assert w.shape == (5023, 5) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    nearest = np.argmin(((v[:, None] - J[None]) ** 2).sum(-1), axis=0)
    assert w[nearest[3], 3] > 0.3 and w[nearest[4], 4] > 0.3
    assert w[np.argmin(v[:, 1]), 0] == pytest.approx(1.0)            # neck bottom -> global
    assert w[np.argmax(v[:, 1]), 1] == pytest.approx(1.0)            # top -> neck


def test_blendshape_bases_are_mm_scale_and_localised(model):
    v, shapedirs, posedirs = model['v_template'], model['shapedirs'], model['posedirs']
    assert shapedirs.shape == (5023, 3, 400) and posedirs.shape == (5023, 3, 36)
    peak = np.linalg.norm(shapedirs, axis=1).max(axis=0)             # (400,) metres per unit
    assert (peak > 1e-4).all() and (peak < 0.01).all()
    assert peak[0] > 5 * peak[299] and peak[300] > 5 * peak[399]
    expr = np.linalg.norm(shapedirs[:, :, 300:], axis=1).mean(axis=1)   # (V,)
    face = (v[:, 2] > 0.05) & (np.abs(v[:, 1]) < 0.06)
    back = v[:, 2] < -0.03
    assert expr[face].mean() > 10 * expr[back].mean()
    assert (np.linalg.norm(posedirs, axis=1).max(axis=0) > 1e-4).all()


def test_uv_layout(model):
    vt, ft, f = model['vt'], model['ft'].astype(np.int64), model['f']
    assert ft.shape == f.shape and len(vt) >= 5023
    assert vt.min() >= 0.0 and vt.max() <= 1.0
    tri = vt[ft]
    area = 0.5 * ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
                  - (tri[:, 1, 1] - tri[:, 0, 1]) * (tri[:, 2, 0] - tri[:, 0, 0]))
    assert (area > 0).all()                                          # no folded triangles
    vertex_of = {}                                                   # vt id -> 3D vertex id
    for a, b in zip(ft.ravel().tolist(), f.ravel().tolist()):
        assert vertex_of.setdefault(a, b) == b
    on_edge = [k for k in vertex_of if vt[k, 0] in (vt[:, 0].min(), vt[:, 0].max())]
    seam = model['v_template'][[vertex_of[k] for k in on_edge]]
    assert len(on_edge) > 100 and (seam[:, 2] < 0).all()             # the seam runs down the back
    np.testing.assert_allclose(seam[:, 0], 0.0, atol=1e-9)


def test_texture_data_structure(texture, model):
    size = texture['img_size']
    assert size == 512
    ids = texture['valid_pixel_ids']
    assert ids.min() >= 0 and ids.max() < size * size
    assert len(np.unique(ids)) == len(ids)
    for i in ids[::997]:
        assert (texture['x_coords'][i], texture['y_coords'][i]) == (i % size, i // size)
    bary = texture['valid_pixel_b_coords']
    assert bary.shape == (len(ids), 3) and (bary >= 0).all()
    np.testing.assert_allclose(bary.sum(axis=1), 1.0)
    np.testing.assert_array_equal(texture['vt'], model['vt'])
    np.testing.assert_array_equal(texture['ft'], model['ft'])


def test_texel_barycentrics_reproduce_texel_centres(texture, model):
    """Mixing the UV corners of each texel's face gives the texel centre (independent lookup
    of the face from its 3D vertex ids)."""
    size, ids = texture['img_size'], texture['valid_pixel_ids']
    face_of = {tuple(face): k for k, face in enumerate(model['f'].tolist())}
    faces = np.array([face_of[tuple(t)] for t in texture['valid_pixel_3d_faces'].tolist()])
    uv = np.einsum('nk,nkc->nc', texture['valid_pixel_b_coords'],
                   model['vt'][model['ft'][faces].astype(np.int64)])
    x, y = texture['x_coords'][ids], texture['y_coords'][ids]
    np.testing.assert_allclose(uv[:, 0], (x + 0.5) / size, atol=1e-9)
    np.testing.assert_allclose(uv[:, 1], 1.0 - (y + 0.5) / size, atol=1e-9)


def test_valid_texels_are_exactly_the_covered_ones(texture, model):
    """Random texels: covered by some UV triangle (brute force, half-plane signs) iff valid;
    and the valid count matches the UV triangles' total area in texels."""
    size = texture['img_size']
    tri = model['vt'][model['ft'].astype(np.int64)]
    valid = set(texture['valid_pixel_ids'].tolist())
    rng = np.random.default_rng(0)
    checked = 0
    for i in rng.integers(0, size * size, 300):
        p = np.array([(i % size + 0.5) / size, 1.0 - (i // size + 0.5) / size])
        side = [np.cross(tri[:, (k + 1) % 3] - tri[:, k], p - tri[:, k]) for k in range(3)]
        side = np.stack(side, axis=1)                                # (F,3), > 0 inside
        if np.any(np.abs(side) < 1e-12):
            continue                                                 # on an edge: either way
        assert bool(np.any((side > 0).all(axis=1))) == (int(i) in valid)
        checked += 1
    assert checked > 280
    area = 0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).sum() * size ** 2
    assert abs(len(valid) - area) < 0.01 * area


def test_landmark_embedding_files(flame_assets, model):
    static = plain_pickle(flame_assets['static_embedding'])
    assert static['lmk_face_idx'].shape == (51,) and static['lmk_face_idx'].dtype == np.uint32
    assert static['lmk_b_coords'].shape == (51, 3)
    dynamic = np.load(flame_assets['dynamic_embedding'], allow_pickle=True)[()]
    assert len(dynamic['lmk_face_idx']) == 79 and len(dynamic['lmk_b_coords']) == 79
    for face_idx, bary in zip(dynamic['lmk_face_idx'] + [static['lmk_face_idx']],
                              dynamic['lmk_b_coords'] + [static['lmk_b_coords']]):
        assert face_idx.max() < len(model['f']) and (bary >= 0).all()
        np.testing.assert_allclose(bary.sum(axis=1), 1.0)
    assert all(a.shape == (17,) for a in dynamic['lmk_face_idx'])
    assert all(b.shape == (17, 3) for b in dynamic['lmk_b_coords'])


def naive_points(v, f, face_idx, bary):
    return np.array([sum(b[k] * v[f[i][k]] for k in range(3)) for i, b in zip(face_idx, bary)])


def test_landmarks_sit_on_the_right_features(flame_assets, model):
    v, f = model['v_template'], model['f'].astype(np.int64)
    static = plain_pickle(flame_assets['static_embedding'])
    p = naive_points(v, f, static['lmk_face_idx'], static['lmk_b_coords'])  # iBUG 17..67
    brows, nose, eye_r, eye_l, mouth = p[0:10], p[10:19], p[19:25], p[25:31], p[31:51]
    assert brows[:, 1].min() > max(eye_r[:, 1].max(), eye_l[:, 1].max())
    assert eye_r[:, 1].min() > nose[4:, 1].max() > mouth[:, 1].max()
    assert (eye_r[:, 0] < 0).all() and (eye_l[:, 0] > 0).all()    # image left is -x
    assert np.argmax(p[:, 2]) in range(10, 19)                     # the nose is frontmost
    np.testing.assert_allclose(eye_r.mean(axis=0) * [-1, 1, 1], eye_l.mean(axis=0), atol=2e-3)


def test_contour_follows_yaw(flame_assets, model):
    v, f = model['v_template'], model['f'].astype(np.int64)
    dynamic = np.load(flame_assets['dynamic_embedding'], allow_pickle=True)[()]

    def contour(index):
        return naive_points(v, f, dynamic['lmk_face_idx'][index], dynamic['lmk_b_coords'][index])
    front, left_turn, right_turn = contour(0), contour(30), contour(39 + 30)
    np.testing.assert_allclose(front[::-1] * [-1, 1, 1], front, atol=2e-3)   # symmetric
    # positive yaw turns the face toward -x: the -x end moves toward the chin, +x end stays
    assert left_turn[0, 0] > front[0, 0] + 0.01
    np.testing.assert_allclose(left_turn[-1], front[-1], atol=1e-9)
    np.testing.assert_allclose(right_turn[::-1] * [-1, 1, 1], left_turn, atol=2e-3)
    assert front[8, 1] < front[0, 1] - 0.03                          # chin below the ends
