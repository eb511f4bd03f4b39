"""FLAME layer in numpy: loader, batched LBS against a naive 4x4-chain reference, model object,
theta layout."""
import pickle

import chumpy as ch
import cv2
import numpy as np
import pytest
import scipy.sparse as sp

from smpl_webuser.lbs import lbs, pose_features, rodrigues
from smpl_webuser.posemapper import posemap
from smpl_webuser.serialization import ModelFormatError, load_model, load_model_arrays
from flame_reference import PARENTS, flame_betas, full_pose, naive_flame as _reference, \
    theta_to_flame_inputs
from util.model.theta import split_theta

def _model_dict(seed=0, n_verts=40, n_betas=14, root_parent=4294967295, dtype=np.uint32):
    rng = np.random.default_rng(seed)
    return {
        'v_template': rng.normal(size=(n_verts, 3)),
        'f': rng.integers(0, n_verts, size=(12, 3)).astype(np.uint32),
        'shapedirs': rng.normal(size=(n_verts, 3, n_betas)) * 0.1,
        'posedirs': rng.normal(size=(n_verts, 3, 36)) * 0.1,
        'J_regressor': sp.csc_matrix(rng.random((5, n_verts)) * (rng.random((5, n_verts)) < 0.3)),
        'weights': rng.dirichlet(np.ones(5), size=n_verts),
        'J': rng.normal(size=(5, 3)),
        'kintree_table': np.array([[root_parent, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=dtype),
        'bs_style': 'lbs', 'bs_type': 'lrotmin',
    }


def _random_inputs(rng, n, k):
    return rng.normal(size=(n, k)), rng.normal(size=(n, 15)) * 0.6, rng.normal(size=(n, 3))


def test_rodrigues_matches_opencv():
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(size=(200, 3)) * 2.0, rng.normal(size=(50, 3)) * 1e-7,
                           [[np.pi, 0, 0], [0, 0, 2 * np.pi]]])
    mats = rodrigues(vecs)
    assert mats.shape == (len(vecs), 3, 3)
    for vec, mat in zip(vecs, mats):
        np.testing.assert_allclose(mat, cv2.Rodrigues(vec)[0], atol=1e-12)
    assert np.array_equal(rodrigues(np.zeros((2, 3))), np.stack([np.eye(3)] * 2))


def test_pose_features_lrotmin():
    rng = np.random.default_rng(2)
    pose = rng.normal(size=(3, 15))
    expected = [np.concatenate([(cv2.Rodrigues(p[3 * j:3 * j + 3])[0] - np.eye(3)).ravel()
                                for j in range(1, 5)]) for p in pose]
    np.testing.assert_allclose(pose_features(pose), expected, atol=1e-12)
    assert posemap('lrotmin') is pose_features
    with pytest.raises(ValueError, match="unknown pose blendshape type 'lrot'"):
        posemap('lrot')


@pytest.mark.parametrize('n_betas', [14, 9])
def test_forward_matches_reference_batched_and_single(n_betas):
    d = _model_dict()
    model = load_model(d)
    rng = np.random.default_rng(3)
    betas, pose, trans = _random_inputs(rng, 4, n_betas)
    verts, joints = model.forward(betas, pose, trans)
    assert verts.shape == (4, 40, 3) and joints.shape == (4, 5, 3)
    for i in range(4):
        ref_v, ref_j = _reference(d, betas[i], pose[i], trans[i])
        np.testing.assert_allclose(verts[i], ref_v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(joints[i], ref_j, rtol=0, atol=1e-10)
        single_v, single_j = model.forward(betas[i], pose[i], trans[i])
        np.testing.assert_allclose(single_v[0], ref_v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(single_j[0], ref_j, rtol=0, atol=1e-10)


def test_lbs_with_dense_regressor_and_no_trans():
    d = _model_dict(seed=4)
    a = load_model_arrays(d)
    rng = np.random.default_rng(5)
    betas, pose, _ = _random_inputs(rng, 2, 14)
    verts, joints = lbs(betas, pose, a['v_template'], a['shapedirs'], a['posedirs'],
                        a['J_regressor'].toarray(), a['parents'], a['weights'])
    for i in range(2):
        ref_v, ref_j = _reference(d, betas[i], pose[i], np.zeros(3))
        np.testing.assert_allclose(verts[i], ref_v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(joints[i], ref_j, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match='15 betas given but the model has 14'):
        lbs(np.zeros((1, 15)), np.zeros((1, 15)), a['v_template'], a['shapedirs'],
            a['posedirs'], a['J_regressor'], a['parents'], a['weights'])


def test_zero_pose_is_exactly_the_shape_blend():
    # Integer-valued arrays make v_template + shapedirs . betas exact whatever the summation
    # order, so any rounding the skinning adds would show; weights do not sum exactly to 1.
    rng = np.random.default_rng(6)
    d = _model_dict(seed=6)
    d['v_template'] = rng.integers(-50, 50, size=(40, 3)).astype(np.float64)
    d['shapedirs'] = rng.integers(-3, 4, size=(40, 3, 14)).astype(np.float64)
    d['J_regressor'] = sp.csc_matrix(rng.integers(0, 4, size=(5, 40)) / 8.0)
    model = load_model(d)
    betas = rng.integers(-5, 6, size=(3, 14)).astype(np.float64)
    verts, joints = model.forward(betas=betas)
    v_shaped = d['v_template'] + np.einsum('vck,nk->nvc', d['shapedirs'], betas)
    assert np.array_equal(verts, v_shaped)
    assert np.array_equal(joints, np.einsum('jv,nvc->njc', d['J_regressor'].toarray(), v_shaped))
    assert np.array_equal(model.forward()[0][0], d['v_template'])


def test_model_object_follows_mutated_parameters():
    d = _model_dict(seed=7)
    model = load_model(d)
    assert model.pose.shape == (15,) and model.betas.shape == (14,) and model.trans.shape == (3,)
    assert np.array_equal(model.r, model.v_template)
    rng = np.random.default_rng(8)
    model.betas[:10] = rng.normal(size=10)
    model.pose[6:9] = [0.3, -0.1, 0.05]
    model.pose[:3] = [0.1, 0.4, -0.2]
    model.trans[:] = [0.5, -1.0, 2.0]
    ref_v, ref_j = _reference(d, model.betas, model.pose, model.trans)
    np.testing.assert_allclose(model.r, ref_v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.J_transformed, ref_j, rtol=0, atol=1e-10)
    verts, _ = model.forward(model.betas[None], model.pose[None], model.trans[None])
    assert np.array_equal(model.r, verts[0])


def test_forward_batch_size_from_any_argument():
    model = load_model(_model_dict(seed=9))
    verts, joints = model.forward(pose=np.zeros((3, 15)))
    assert verts.shape == (3, 40, 3) and joints.shape == (3, 5, 3)
    assert model.forward(trans=np.ones((2, 3)))[0].shape == (2, 40, 3)
    with pytest.raises(ValueError, match='batch sizes differ'):
        model.forward(betas=np.zeros((2, 14)), pose=np.zeros((3, 15)))


@pytest.mark.parametrize('root_parent, dtype', [(4294967295, np.uint32), (-1, np.int64),
                                                (-1, np.int32), (7, np.int64), (0, np.uint32)])
def test_kintree_root_is_normalised(root_parent, dtype):
    a = load_model_arrays(_model_dict(root_parent=root_parent, dtype=dtype))
    assert a['kintree_table'].dtype == np.int64
    assert a['kintree_table'].tolist() == [[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]]
    assert a['parents'].tolist() == PARENTS


def test_kintree_ids_are_mapped_to_positions():
    d = _model_dict()
    d['kintree_table'] = np.array([[4294967295, 10, 11, 11, 11], [10, 11, 12, 13, 14]])
    assert load_model_arrays(d)['parents'].tolist() == PARENTS
    d['kintree_table'] = np.array([[-1, 12, 10, 11, 11], [10, 11, 12, 13, 14]])
    with pytest.raises(ModelFormatError, match='joint 1 has parent id 12'):
        load_model_arrays(d)


def test_canonical_types_and_renamed_keys():
    d = _model_dict(seed=10)
    a = load_model_arrays(d)
    for key in ('v_template', 'shapedirs', 'posedirs', 'weights', 'J'):
        assert a[key].dtype == np.float64
        np.testing.assert_array_equal(a[key], d[key])
    assert sp.isspmatrix_csc(a['J_regressor']) and a['J_regressor'].dtype == np.float64
    assert a['f'].dtype == np.int64 and a['f'].shape == (12, 3)
    np.testing.assert_array_equal(a['f'], d['f'])
    assert a['bs_type'] == 'lrotmin' and a['bs_style'] == 'lbs'

    old = dict(d)
    for new_key, old_key in (('v_template', 'default_v'), ('J_regressor', 'joint_regressor'),
                             ('posedirs', 'blendshapes'), ('J', 'joints')):
        old[old_key] = old.pop(new_key)
    old['joint_regressor'] = old['joint_regressor'].toarray()  # dense is accepted too
    b = load_model_arrays(old)
    for key in ('v_template', 'posedirs', 'J'):
        np.testing.assert_array_equal(b[key], a[key])
    assert sp.isspmatrix_csc(b['J_regressor'])
    np.testing.assert_array_equal(b['J_regressor'].toarray(), a['J_regressor'].toarray())

    without_j = dict(d)
    del without_j['J']
    np.testing.assert_allclose(load_model_arrays(without_j)['J'],
                               d['J_regressor'].toarray() @ d['v_template'], atol=1e-12)


def test_model_file_errors_name_file_and_key(tmp_path):
    d = _model_dict()
    del d['weights']
    path = tmp_path / 'generic_model.pkl'
    path.write_bytes(pickle.dumps(d, protocol=2))
    with pytest.raises(ModelFormatError) as err:
        load_model_arrays(str(path))
    assert str(err.value) == "%s: missing key 'weights' in the model file" % path

    d = _model_dict()
    d['posedirs'] = d['posedirs'][:, :, :30]
    with pytest.raises(ModelFormatError, match=r'posedirs has shape \(40, 3, 30\), expected '
                                               r'\(40, 3, 36\)'):
        load_model_arrays(d)
    d = _model_dict()
    d['bs_style'] = 'dqs'
    with pytest.raises(ModelFormatError, match="unsupported bs_style 'dqs'"):
        load_model_arrays(d)
    path.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ModelFormatError, match='expected a pickled dict'):
        load_model_arrays(str(path))


def test_chumpy_written_model_file_loads(tmp_path):
    d = _model_dict(seed=11)
    written = {k: ch.array(v) if k in ('v_template', 'shapedirs', 'posedirs', 'weights', 'J')
               else v for k, v in d.items()}
    path = tmp_path / 'generic_model.pkl'
    path.write_bytes(pickle.dumps(written, protocol=2))
    model = load_model(str(path))
    np.testing.assert_array_equal(model.shapedirs, d['shapedirs'])
    np.testing.assert_array_equal(model.J_regressor.toarray(), d['J_regressor'].toarray())
    assert model.parents.tolist() == PARENTS
    rng = np.random.default_rng(12)
    betas, pose, trans = _random_inputs(rng, 1, 14)
    np.testing.assert_allclose(model.forward(betas, pose, trans)[0][0],
                               _reference(d, betas[0], pose[0], trans[0])[0], atol=1e-10)


def test_chumpy_expressions_only_matter_where_needed(tmp_path):
    d = _model_dict(seed=13)
    written = dict(d, v_template=ch.array(d['v_template']),
                   J=ch.array(d['v_template'][:5]) * 0,            # expression: recomputed
                   pose_training_info=ch.array(np.ones(3)) + 1)   # expression nobody needs
    path = tmp_path / 'generic_model.pkl'
    path.write_bytes(pickle.dumps(written, protocol=2))
    model = load_model_arrays(str(path))
    np.testing.assert_allclose(model['J'], d['J_regressor'] @ d['v_template'], atol=1e-12)
    written['shapedirs'] = ch.array(d['shapedirs']) * 1.0
    path.write_bytes(pickle.dumps(written, protocol=2))
    with pytest.raises(ModelFormatError, match="'shapedirs' is a chumpy expression"):
        load_model_arrays(str(path))


def test_theta_layout():
    theta = np.arange(159.0)
    parts = split_theta(theta)
    np.testing.assert_array_equal(parts['cam'], [0, 1, 2])
    np.testing.assert_array_equal(parts['pose'], np.arange(3, 9))
    np.testing.assert_array_equal(parts['shape'], np.arange(9, 109))
    np.testing.assert_array_equal(parts['expression'], np.arange(109, 159))
    batched = split_theta(np.stack([theta, -theta]))
    assert batched['shape'].shape == (2, 100)
    np.testing.assert_array_equal(batched['expression'][1], -np.arange(109, 159))
    with pytest.raises(ValueError, match='159 values'):
        split_theta(np.zeros(158))
    custom = split_theta(np.arange(3 + 6 + 10 + 5.0), shape_params=10, expression_params=5)
    np.testing.assert_array_equal(custom['expression'], np.arange(19, 24))

    betas, pose = theta_to_flame_inputs(theta)
    expected_pose = np.zeros(15)
    expected_pose[0:3], expected_pose[6:9] = [3, 4, 5], [6, 7, 8]
    np.testing.assert_array_equal(pose, expected_pose)
    expected_betas = np.zeros(400)
    expected_betas[:100] = np.arange(9, 109)
    expected_betas[300:350] = np.arange(109, 159)
    np.testing.assert_array_equal(betas, expected_betas)
    np.testing.assert_array_equal(full_pose(np.ones((2, 6)))[:, 3:6], 0)
    assert flame_betas(np.ones((4, 100)), np.ones((4, 50)), 120, 60).shape == (4, 180)
    with pytest.raises(ValueError, match='100 shape parameters do not fit'):
        flame_betas(np.ones(100), np.ones(50), n_shape=50)


def test_flame_vertices_of_ringnet_parameters_match_the_naive_reference():
    """util.using_flame_parameters.flame_vertices (--smooth's meshes) against the naive chain
    fed with the test's own theta -> FLAME mapping (tests/flame_reference.py)."""
    from util.using_flame_parameters import flame_vertices
    d = _model_dict(n_betas=14)
    model = load_model(d)
    rng = np.random.default_rng(5)
    pose, shape, expression = rng.normal(size=(3, 6)) * 0.4, rng.normal(size=(3, 4)), \
        rng.normal(size=(3, 3))
    verts = flame_vertices(model, pose, shape, expression, n_shape=9)
    for i in range(3):
        betas = flame_betas(shape[i], expression[i], n_shape=9, n_expr=5)
        ref, _ = _reference(d, betas, full_pose(pose[i]), np.zeros(3))
        np.testing.assert_allclose(verts[i], ref, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match='do not fit'):
        flame_vertices(model, pose, shape, rng.normal(size=(3, 6)), n_shape=9)
