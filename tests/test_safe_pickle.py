"""util.io.safe_pickle: chumpy / old-scipy / Python-2 pickles load without their modules; anything
that would run code is refused before it runs."""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from util.io.safe_pickle import (ChumpyExpression, UnsafePickleError, load_npy,
                              load_npy_dict, load_pickle)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flame_like(rng, n_verts=20):
    """Plain numpy version of a small FLAME-format model (formats §6 keys)."""
    return {
        'v_template': rng.normal(size=(n_verts, 3)),
        'f': rng.integers(0, n_verts, size=(7, 3)).astype(np.uint32),
        'shapedirs': rng.normal(size=(n_verts, 3, 6)),
        'posedirs': rng.normal(size=(n_verts, 3, 36)),
        'J_regressor': sp.random(5, n_verts, density=0.3, format='csc', random_state=1),
        'weights': rng.random((n_verts, 5)),
        'J': rng.normal(size=(5, 3)),
        'kintree_table': np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        'bs_style': 'lbs',
        'bs_type': 'lrotmin',
    }


def _assert_same(loaded, expected):
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        if sp.issparse(value):
            assert sp.issparse(loaded[key]) and loaded[key].format == value.format
            np.testing.assert_array_equal(loaded[key].toarray(), value.toarray())
        elif isinstance(value, np.ndarray):
            assert isinstance(loaded[key], np.ndarray) and loaded[key].dtype == value.dtype
            np.testing.assert_array_equal(loaded[key], value)
        else:
            assert loaded[key] == value


def test_real_chumpy_pickle_loads_where_chumpy_cannot_be_imported(tmp_path):
    import chumpy as ch
    expected = _flame_like(np.random.default_rng(0))
    chumpy_keys = ('v_template', 'shapedirs', 'posedirs', 'weights', 'J')
    data = {k: ch.array(v) if k in chumpy_keys else v for k, v in expected.items()}
    data['nested'] = [ch.array(np.arange(3.0)), (ch.array(np.eye(2)), 'x')]
    pkl = tmp_path / 'generic_model.pkl'
    pkl.write_bytes(pickle.dumps(data, protocol=2))
    assert b'chumpy.ch\nCh' in pkl.read_bytes()
    np.savez(tmp_path / 'expected.npz', **{k: v for k, v in expected.items()
                                           if isinstance(v, np.ndarray)})
    sp.save_npz(tmp_path / 'J_regressor.npz', expected['J_regressor'])

    script = textwrap.dedent('''
        import sys
        sys.modules['chumpy'] = None  # any "import chumpy" now raises ImportError
        sys.path.insert(0, %r)
        import numpy as np, scipy.sparse as sp
        from util.io.safe_pickle import load_pickle
        d = load_pickle(%r)
        expected = np.load(%r)
        for key in expected.files:
            assert type(d[key]) is np.ndarray, key
            assert d[key].dtype == expected[key].dtype, key
            assert np.array_equal(d[key], expected[key]), key
        J = sp.load_npz(%r)
        assert sp.issparse(d['J_regressor']) and (d['J_regressor'] != J).nnz == 0
        assert d['J_regressor'].shape == J.shape
        assert d['bs_style'] == 'lbs' and d['bs_type'] == 'lrotmin'
        assert np.array_equal(d['nested'][0], np.arange(3.0))
        assert np.array_equal(d['nested'][1][0], np.eye(2)) and d['nested'][1][1] == 'x'
        assert not any(m.startswith('chumpy') for m, mod in sys.modules.items() if mod)
        print('LOADED')
    ''') % (ROOT, str(pkl), str(tmp_path / 'expected.npz'), str(tmp_path / 'J_regressor.npz'))
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'LOADED' in result.stdout


def test_chumpy_expression_without_value_is_a_clear_error(tmp_path):
    import chumpy as ch
    pkl = tmp_path / 'expr.pkl'
    pkl.write_bytes(pickle.dumps({'a': ch.array(np.ones(3)) * 2, 'b': ch.array([1.0, 2.0])},
                                 protocol=2))
    loaded = load_pickle(str(pkl))  # an expression anywhere does not stop the plain values
    assert isinstance(loaded['a'], ChumpyExpression) and 'chumpy' in loaded['a'].qualname
    np.testing.assert_array_equal(loaded['b'], [1.0, 2.0])


def test_old_scipy_and_numpy_module_paths(tmp_path):
    matrix = sp.random(4, 9, density=0.4, format='csc', random_state=3)
    array = np.arange(12.0).reshape(3, 4)
    raw = pickle.dumps({'J_regressor': matrix, 'a': array}, protocol=2)
    assert b'cscipy.sparse._csc\ncsc_matrix\n' in raw and b'numpy._core.multiarray' in raw
    # Python-2 era files name the public module paths of that time.
    old = raw.replace(b'cscipy.sparse._csc\ncsc_matrix\n', b'cscipy.sparse.csc\ncsc_matrix\n')
    old = old.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'_csc' not in old and b'numpy._core' not in old
    path = tmp_path / 'old.pkl'
    path.write_bytes(old)
    loaded = load_pickle(str(path))
    assert isinstance(loaded['J_regressor'], sp.csc_matrix)
    np.testing.assert_array_equal(loaded['J_regressor'].toarray(), matrix.toarray())
    np.testing.assert_array_equal(loaded['a'], array)


def test_protocol_0_pickle_with_copy_reg_reconstructor(tmp_path):
    matrix = sp.random(3, 5, density=0.5, format='csr', random_state=4)
    raw = pickle.dumps({'m': matrix, 's': {1, 2}, 'x': np.float64(2.5)}, protocol=0)
    assert b'copy_reg\n_reconstructor' in raw and b'__builtin__\nobject' in raw
    path = tmp_path / 'p0.pkl'
    path.write_bytes(raw)
    loaded = load_pickle(str(path))
    assert isinstance(loaded['m'], sp.csr_matrix)
    np.testing.assert_array_equal(loaded['m'].toarray(), matrix.toarray())
    assert loaded['s'] == {1, 2} and loaded['x'] == 2.5


def test_old_coo_state_with_row_col(tmp_path):
    # A hand-assembled pickle: NEWOBJ of 'scipy.sparse.coo coo_matrix', BUILD with the state
    # layout of old scipy versions (row / col / shape instead of coords / _shape).
    state = {'row': np.array([0, 2, 1]), 'col': np.array([1, 0, 3]),
             'data': np.array([1.5, -2.0, 4.0]), 'shape': (3, 4)}
    body = pickle.dumps(state, protocol=2)[2:-1]  # without PROTO and STOP
    raw = b'\x80\x02cscipy.sparse.coo\ncoo_matrix\n)\x81' + body + b'b.'
    path = tmp_path / 'coo.pkl'
    path.write_bytes(raw)
    loaded = load_pickle(str(path))
    expected = np.zeros((3, 4))
    expected[[0, 2, 1], [1, 0, 3]] = [1.5, -2.0, 4.0]
    assert isinstance(loaded, sp.coo_matrix)
    np.testing.assert_array_equal(loaded.toarray(), expected)


class _Evil(object):
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(target):
    import subprocess as sub
    return {
        'os.system': _Evil(os.system, ('touch %s' % target,)),
        'open': _Evil(open, (target, 'w')),
        'eval': _Evil(eval, ("open(%r, 'w')" % target,)),
        'subprocess': _Evil(sub.call, (['touch', target],)),
    }


@pytest.mark.parametrize('kind', ['os.system', 'open', 'eval', 'subprocess'])
@pytest.mark.parametrize('protocol', [0, 2, 4])
def test_code_in_pickle_is_refused_before_running(tmp_path, kind, protocol):
    target = str(tmp_path / 'PWNED')
    path = tmp_path / 'model.pkl'
    path.write_bytes(pickle.dumps({'v_template': np.zeros(3), 'x': _payloads(target)[kind]},
                                  protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        load_pickle(str(path))
    message = str(err.value)
    assert message.startswith(str(path) + ": refusing to load '") and '\n' not in message
    assert 'only numpy, scipy.sparse and chumpy arrays' in message
    assert not os.path.exists(target)


def test_refused_global_names_module_and_name(tmp_path):
    path = tmp_path / 'a.pkl'
    path.write_bytes(b'cposix\nsystem\n(S"echo hi"\ntR.')
    with pytest.raises(UnsafePickleError, match=r"refusing to load 'posix\.system'"):
        load_pickle(str(path))


def test_reconstructor_of_non_stand_in_class_is_refused(tmp_path):
    path = tmp_path / 'r.pkl'
    path.write_bytes(b'ccopy_reg\n_reconstructor\n(c__builtin__\nset\nc__builtin__\nobject\nNtR.')
    with pytest.raises(UnsafePickleError, match='refusing to load'):
        load_pickle(str(path))


@pytest.mark.parametrize('as_dict', [False, True])
def test_code_in_object_npy_is_refused(tmp_path, as_dict):
    target = str(tmp_path / 'PWNED')
    evil = _payloads(target)['os.system']
    path = str(tmp_path / 'params.npy')
    if as_dict:
        np.save(path, {'shape': np.zeros(100), 'cam': evil})
    else:
        np.save(path, np.array([evil, 1], dtype=object))
    with pytest.raises(UnsafePickleError, match=r"params\.npy: refusing to load '(posix|os)\."):
        load_npy(path)
    assert not os.path.exists(target)


def test_load_npy_plain_and_object_arrays(tmp_path):
    plain = np.asfortranarray(np.arange(24, dtype=np.int16).reshape(4, 6))
    np.save(tmp_path / 'plain.npy', plain)
    loaded = load_npy(str(tmp_path / 'plain.npy'))
    assert loaded.dtype == np.int16
    np.testing.assert_array_equal(loaded, plain)

    params = {'cam': np.array([1.0, 2.0, 3.0]), 'shape': np.linspace(0, 1, 100),
              'lists': [np.arange(3), np.ones((2, 2))]}
    np.save(tmp_path / 'params.npy', params)
    loaded = load_npy_dict(str(tmp_path / 'params.npy'))
    assert sorted(loaded) == sorted(params)
    np.testing.assert_array_equal(loaded['cam'], params['cam'])
    np.testing.assert_array_equal(loaded['shape'], params['shape'])
    np.testing.assert_array_equal(loaded['lists'][1], params['lists'][1])

    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.arange(2), np.arange(5)
    np.save(tmp_path / 'ragged.npy', ragged)
    loaded = load_npy(str(tmp_path / 'ragged.npy'))
    assert loaded.shape == (2,) and loaded.dtype == object
    np.testing.assert_array_equal(loaded[1], np.arange(5))


def test_python2_style_object_npy(tmp_path):
    # np.save in Python 2 pickled object arrays with protocol 2.
    path = tmp_path / 'emb.npy'
    array = np.array({'lmk_face_idx': np.arange(5, dtype=np.uint32)})
    with open(path, 'wb') as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(array))
        pickle.dump(array, fh, protocol=2)
    loaded = load_npy_dict(str(path))
    assert loaded['lmk_face_idx'].dtype == np.uint32
    np.testing.assert_array_equal(loaded['lmk_face_idx'], np.arange(5))


def test_load_npy_dict_rejects_other_arrays(tmp_path):
    np.save(tmp_path / 'a.npy', np.zeros(3))
    with pytest.raises(ValueError, match=r'a\.npy: expected np\.save of a dict'):
        load_npy_dict(str(tmp_path / 'a.npy'))


@pytest.mark.parametrize('name, make', [
    ('cut.pkl', lambda p: p.write_bytes(pickle.dumps({'a': np.arange(50.0)}, protocol=2)[:-40])),
    ('junk.pkl', lambda p: p.write_bytes(b'this is not a pickle at all')),
    ('empty.pkl', lambda p: p.write_bytes(b'')),
])
def test_corrupt_pickles_give_one_line_errors(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    with pytest.raises(ValueError) as err:
        load_pickle(str(path))
    assert str(err.value).startswith(str(path) + ':') and '\n' not in str(err.value)


def test_corrupt_npy_files_give_one_line_errors(tmp_path):
    np.save(tmp_path / 'obj.npy', {'a': np.arange(100.0)})
    np.save(tmp_path / 'num.npy', np.arange(100.0))
    (tmp_path / 'junk.npy').write_bytes(b'\x93NUMPY garbage')
    for name in ('obj.npy', 'num.npy'):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[:len(data) - 100])
    for name in ('obj.npy', 'num.npy', 'junk.npy'):
        path = str(tmp_path / name)
        with pytest.raises(ValueError) as err:
            load_npy(path)
        assert str(err.value).startswith(path + ':') and '\n' not in str(err.value)
