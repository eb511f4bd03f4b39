"""util.face.landmarks against naive loops, plain pickle / np.load, and rotation matrices built here."""
import pickle

import numpy as np
import pytest

from util.face.landmarks import (EmbeddingFormatError, barycentric_points, dynamic_index,
                            landmarks_68, load_dynamic_embedding, load_static_embedding,
                            yaw_from_pose)


@pytest.fixture(scope='module')
def faces(flame_assets):
    with open(flame_assets['flame_model'], 'rb') as fh:
        return np.asarray(pickle.load(fh, encoding='latin1')['f'], dtype=np.int64)


@pytest.fixture(scope='module')
def embeddings(flame_assets):
    return (load_static_embedding(flame_assets['static_embedding']),
            load_dynamic_embedding(flame_assets['dynamic_embedding']))


def naive_index(yaw):
    y = min(max(int(round(yaw)), -39), 39)
    return y if y >= 0 else 39 - y


def naive_point(v, faces, face, bary):
    return sum(bary[k] * v[faces[face][k]] for k in range(3))


def test_loaders_match_plain_readers(flame_assets, embeddings):
    (s_idx, s_bary), (d_idx, d_bary) = embeddings
    with open(flame_assets['static_embedding'], 'rb') as fh:
        static = pickle.load(fh, encoding='latin1')
    assert s_idx.dtype == np.int64 and s_idx.shape == (51,) and s_bary.shape == (51, 3)
    np.testing.assert_array_equal(s_idx, static['lmk_face_idx'])
    np.testing.assert_array_equal(s_bary, static['lmk_b_coords'])
    dynamic = np.load(flame_assets['dynamic_embedding'], allow_pickle=True)[()]
    assert d_idx.shape == (79, 17) and d_bary.shape == (79, 17, 3)
    for k in range(79):
        np.testing.assert_array_equal(d_idx[k], dynamic['lmk_face_idx'][k])
        np.testing.assert_array_equal(d_bary[k], dynamic['lmk_b_coords'][k])


def test_dynamic_index_table():
    yaws = np.array([0.0, 0.4, 1.6, 10.0, 38.6, 39.0, 55.0, -0.4, -1.0, -1.6, -20.0, -39.0, -80.0])
    assert list(dynamic_index(yaws)) == [naive_index(y) for y in yaws]
    assert list(dynamic_index(np.array([-1.0, -39.0, 39.0]))) == [40, 78, 39]


def test_barycentric_points_per_mesh_faces(faces):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(3, faces.max() + 1, 3))
    face_idx = rng.integers(0, len(faces), size=(3, 7))
    bary = rng.dirichlet(np.ones(3), size=(3, 7))
    got = barycentric_points(v, faces, face_idx, bary)
    for n in range(3):
        for l in range(7):
            np.testing.assert_allclose(got[n, l], naive_point(v[n], faces, face_idx[n, l],
                                                              bary[n, l]), atol=1e-12)
    shared = barycentric_points(v, faces, face_idx[0], bary[0])     # (L,) shared by the batch
    assert shared.shape == (3, 7, 3)
    np.testing.assert_allclose(shared[2, 4], naive_point(v[2], faces, face_idx[0, 4], bary[0, 4]))


def test_landmarks_68_equal_naive_formula(faces, embeddings):
    static, dynamic = embeddings
    rng = np.random.default_rng(2)
    v = rng.normal(size=(4, faces.max() + 1, 3))
    yaws = np.array([0.0, 25.3, -17.8, -60.0])
    got = landmarks_68(v, faces, static, dynamic, yaws)
    assert got.shape == (4, 68, 3)
    for n, yaw in enumerate(yaws):
        k = naive_index(yaw)
        expected = ([naive_point(v[n], faces, dynamic[0][k, j], dynamic[1][k, j]) for j in range(17)]
                    + [naive_point(v[n], faces, static[0][j], static[1][j]) for j in range(51)])
        np.testing.assert_allclose(got[n], np.array(expected), atol=1e-12)
    # negative yaw picks entry 39 - yaw: -17.8 rounds to -18 -> 57
    np.testing.assert_allclose(got[2, 0], naive_point(v[2], faces, dynamic[0][57, 0],
                                                      dynamic[1][57, 0]))


def rot_y(a):
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_yaw_from_pose_sign_and_neck():
    pose6 = np.zeros((3, 6))
    pose6[0, 1], pose6[1, 1], pose6[2, 0] = 0.3, -0.5, 0.4     # about y, about y, about x
    np.testing.assert_allclose(yaw_from_pose(pose6), -np.degrees([0.3, -0.5, 0.0]), atol=1e-9)
    # full pose: global and neck compose; an axis-angle about y with angle a is rot_y(a)
    pose15 = np.zeros((1, 15))
    pose15[0, 1], pose15[0, 4] = 0.2, 0.15
    R = rot_y(0.2) @ rot_y(0.15)
    expected = -np.degrees(np.arctan2(-R[2, 0], np.hypot(R[0, 0], R[1, 0])))
    np.testing.assert_allclose(yaw_from_pose(pose15), [expected], atol=1e-9)
    np.testing.assert_allclose(expected, -np.degrees(0.35))


def test_bad_embedding_files_name_the_file(tmp_path):
    missing = tmp_path / 'no_keys.pkl'
    with open(missing, 'wb') as fh:
        pickle.dump({'something': 1}, fh, protocol=2)
    with pytest.raises(EmbeddingFormatError, match='no_keys.pkl.*lmk_face_idx'):
        load_static_embedding(str(missing))
    wrong = tmp_path / 'short.pkl'
    with open(wrong, 'wb') as fh:
        pickle.dump({'lmk_face_idx': np.zeros(50, np.uint32),
                     'lmk_b_coords': np.zeros((50, 3))}, fh, protocol=2)
    with pytest.raises(EmbeddingFormatError, match=r'short.pkl: lmk_face_idx has shape \(50,\)'):
        load_static_embedding(str(wrong))
    ragged = tmp_path / 'ragged.npy'
    np.save(ragged, {'lmk_face_idx': [np.zeros(17, int)] * 78 + [np.zeros(16, int)],
                     'lmk_b_coords': [np.zeros((17, 3))] * 79})
    with pytest.raises(EmbeddingFormatError, match='ragged.npy'):
        load_dynamic_embedding(str(ragged))
