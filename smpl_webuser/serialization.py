"""FLAME / SMPL model files -> canonical numpy arrays (the original module's name).

The files are Python-2 pickles with chumpy arrays and a scipy.sparse joint regressor; they are
read with util.io.safe_pickle, so neither chumpy nor any code from the file is needed.
"""
import os

import numpy as np
import scipy.sparse as sp

from smpl_webuser.posemapper import posemap
from smpl_webuser.verts import FlameModel
from util.io.safe_pickle import ChumpyExpression, load_pickle

# Old key names the original loader also accepted (SMPL's backwards-compatibility renames).
_RENAMED_KEYS = (('default_v', 'v_template'), ('template_v', 'v_template'),
                 ('joint_regressor', 'J_regressor'), ('blendshapes', 'posedirs'),
                 ('joints', 'J'))
_REQUIRED_KEYS = ('v_template', 'f', 'shapedirs', 'posedirs', 'J_regressor', 'weights',
                  'kintree_table')


class ModelFormatError(ValueError):
    """The model file lacks a key or holds an array of the wrong shape."""


def _canonical_keys(raw):
    out = dict(raw)
    for old, new in _RENAMED_KEYS:
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def _check_shape(source, name, array, shape):
    """Raise unless ``array.shape`` matches ``shape`` (None matches any length)."""
    if len(array.shape) != len(shape) or any(
            want is not None and got != want for got, want in zip(array.shape, shape)):
        pattern = '(%s)' % ', '.join('*' if n is None else str(n) for n in shape)
        raise ModelFormatError('%s: %s has shape %s, expected %s'
                               % (source, name, tuple(array.shape), pattern))


def _parents(source, kintree_table):
    """Parent position of each joint (-1 for the root) from kintree_table (2, J).

    Row 1 holds joint ids, row 0 the parent's id. Column 0 is the root whatever its stored
    parent (releases store -1, 4294967295 or other values there), as in the original loader.
    """
    position = {int(joint_id): j for j, joint_id in enumerate(kintree_table[1])}
    parents = [-1]
    for j in range(1, kintree_table.shape[1]):
        parent = position.get(int(kintree_table[0, j]), j)
        if parent >= j:  # the skinning chain needs every parent before its children
            raise ModelFormatError('%s: kintree_table: joint %d has parent id %d, which is not '
                                   'an earlier joint' % (source, j, kintree_table[0, j]))
        parents.append(parent)
    return np.array(parents, dtype=np.int64)


def load_model_arrays(path_or_dict):
    """Canonical arrays of a FLAME / SMPL model given as a pickle path or an already-loaded dict.

    Returns a dict: float64 v_template (V, 3), shapedirs (V, 3, K), posedirs (V, 3, 9 (J-1)),
    weights (V, J), J (J, 3); J_regressor scipy.sparse csc float64 (J, V); f int64 (F, 3);
    kintree_table int64 (2, J) with the root's parent set to -1; parents int64 (J,);
    bs_type and bs_style str.
    """
    if isinstance(path_or_dict, dict):
        source, raw = '<model dict>', path_or_dict
    else:
        source = os.fspath(path_or_dict)
        raw = load_pickle(source)
        if not isinstance(raw, dict):
            raise ModelFormatError('%s: expected a pickled dict, found %s'
                                   % (source, type(raw).__name__))
    raw = _canonical_keys(raw)
    if isinstance(raw.get('J'), ChumpyExpression):
        del raw['J']  # recomputed from the regressor below
    for key in _REQUIRED_KEYS:
        if key not in raw:
            raise ModelFormatError("%s: missing key '%s' in the model file" % (source, key))
        if isinstance(raw[key], ChumpyExpression):
            raise ModelFormatError("%s: '%s' is a chumpy expression (%s) without a stored value; "
                                   "only plain arrays can be read without chumpy"
                                   % (source, key, raw[key].qualname))

    out = {name: np.array(raw[name], dtype=np.float64)
           for name in ('v_template', 'shapedirs', 'posedirs', 'weights')}
    out['J_regressor'] = sp.csc_matrix(raw['J_regressor'], dtype=np.float64)
    out['f'] = np.array(raw['f'], dtype=np.int64)
    kintree_table = np.array(raw['kintree_table'], dtype=np.int64)
    _check_shape(source, 'kintree_table', kintree_table, (2, None))
    n_verts, n_joints = out['v_template'].shape[0], kintree_table.shape[1]
    for name, shape in (('v_template', (n_verts, 3)), ('shapedirs', (n_verts, 3, None)),
                        ('posedirs', (n_verts, 3, (n_joints - 1) * 9)),
                        ('weights', (n_verts, n_joints)), ('J_regressor', (n_joints, n_verts)),
                        ('f', (None, 3))):
        _check_shape(source, name, out[name], shape)
    if out['f'].size and (out['f'].min() < 0 or out['f'].max() >= n_verts):
        raise ModelFormatError('%s: f (the faces) has vertex indices outside [0, %d)'
                               % (source, n_verts))
    out['parents'] = _parents(source, kintree_table)
    kintree_table[0, 0] = -1
    out['kintree_table'] = kintree_table
    out['J'] = (np.array(raw['J'], dtype=np.float64) if 'J' in raw
                else np.asarray(out['J_regressor'] @ out['v_template']))
    _check_shape(source, 'J', out['J'], (n_joints, 3))

    out['bs_type'] = str(raw.get('bs_type', 'lrotmin'))
    out['bs_style'] = str(raw.get('bs_style', 'lbs'))
    try:
        posemap(out['bs_type'])
    except ValueError as exc:
        raise ModelFormatError('%s: %s' % (source, exc)) from exc
    if out['bs_style'] != 'lbs':
        raise ModelFormatError("%s: unsupported bs_style %r (only 'lbs')"
                               % (source, out['bs_style']))
    return out


def load_model(path_or_dict):
    """FlameModel for a FLAME / SMPL pickle path or an already-loaded dict."""
    return FlameModel(load_model_arrays(path_or_dict))
