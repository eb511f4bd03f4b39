"""Neutral (VOCA) template: FLAME with the predicted shape only (formats §5)."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import trimesh

from smpl_webuser.serialization import load_model
from util.io.mesh_io import read_obj
from util.using_flame_parameters import make_prdicted_mesh_neutral, neutral_vertices


def _model_dict(seed=0, n_verts=30, n_shape=12, n_expr=4):
    rng = np.random.default_rng(seed)
    return {
        'v_template': rng.normal(size=(n_verts, 3)),
        'f': rng.integers(0, n_verts, size=(9, 3)).astype(np.uint32),
        'shapedirs': rng.normal(size=(n_verts, 3, n_shape + n_expr)),
        'posedirs': rng.normal(size=(n_verts, 3, 36)),
        'J_regressor': sp.csc_matrix(rng.random((5, n_verts)) / n_verts),
        'weights': rng.dirichlet(np.ones(5), size=n_verts),
        'kintree_table': np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        'bs_style': 'lbs', 'bs_type': 'lrotmin',
    }


def _formula(d, shape):
    """v_template + sum_k shape_k shapedirs[..., k] over the given shape components only."""
    return d['v_template'] + sum(s * d['shapedirs'][:, :, k] for k, s in enumerate(shape))


def test_neutral_vertices_equal_the_shape_formula():
    d = _model_dict()
    rng = np.random.default_rng(1)
    shapes = rng.normal(size=(3, 8))
    model = load_model(d)
    model.pose[:] = 0.7  # the model's current pose / expression / translation must not matter
    model.betas[:] = 1.0
    model.trans[:] = 5.0
    batched = neutral_vertices(model, shapes, n_shape=12)
    assert batched.shape == (3, 30, 3)
    for shape, verts in zip(shapes, batched):
        np.testing.assert_allclose(verts, _formula(d, shape), rtol=0, atol=1e-12)
    single = neutral_vertices(d, shapes[0], n_shape=12)  # a dict works as well
    assert single.shape == (30, 3)
    np.testing.assert_allclose(single, _formula(d, shapes[0]), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match='13 shape parameters do not fit'):
        neutral_vertices(model, np.zeros(13), n_shape=12)


def test_original_entry_point_reads_params_and_model(tmp_path):
    d = _model_dict(seed=2, n_shape=300, n_expr=100)
    model_path = tmp_path / 'generic_model.pkl'
    model_path.write_bytes(pickle.dumps(d, protocol=2))
    rng = np.random.default_rng(3)
    params = {'cam': rng.normal(size=3), 'pose': rng.normal(size=6),
              'shape': rng.normal(size=100), 'expression': rng.normal(size=50)}
    np.save(tmp_path / 'params.npy', params)
    mesh = make_prdicted_mesh_neutral(str(tmp_path / 'params.npy'), str(model_path))
    np.testing.assert_allclose(mesh.v, _formula(d, params['shape']), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(mesh.f, d['f'])

    np.save(tmp_path / 'bad.npy', {'cam': np.zeros(3)})
    with pytest.raises(ValueError, match=r"bad\.npy: no 'shape' entry"):
        make_prdicted_mesh_neutral(str(tmp_path / 'bad.npy'), str(model_path))


def test_full_size_template_written_and_read_back(tmp_path, flame_assets):
    model = load_model(flame_assets['flame_model'])
    shape = np.random.default_rng(4).normal(size=100)
    verts = neutral_vertices(model, shape)
    expected = model.v_template + np.tensordot(model.shapedirs[:, :, :100], shape, axes=1)
    np.testing.assert_allclose(verts, expected, rtol=0, atol=1e-10)

    params_path = tmp_path / 'params.npy'
    np.save(params_path, {'shape': shape, 'expression': np.ones(50)})
    mesh = make_prdicted_mesh_neutral(str(params_path), flame_assets['flame_model'])
    path = str(tmp_path / 'neutral.obj')
    mesh.write_obj(path)
    other = trimesh.load(path, process=False)
    assert other.vertices.shape == (5023, 3)
    assert np.array_equal(np.asarray(other.vertices), verts)  # order and values kept
    assert np.array_equal(np.asarray(other.faces), model.f)
    assert np.array_equal(read_obj(path).v, verts)
