"""Restricted loading of pickles and object ``.npy`` files (FLAME models, saved parameters).

Pickles can run arbitrary code, and the FLAME files are Python-2 pickles that mention chumpy and
old scipy module paths. This module never imports the classes a file names: numpy arrays are
rebuilt by numpy's own reconstruction functions, while scipy.sparse and chumpy objects become
stand-ins that only record their pickled state and are turned into scipy / numpy arrays after
loading. Every other global makes loading fail before it can be called.
"""
import os
import pickle

import numpy as np
import scipy.sparse as sp

from util.errors import OutOfMemory, one_line, out_of_memory

try:  # numpy >= 2 (numpy.core still imports there, but with a deprecation warning)
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray, numeric as _numeric


class UnsafePickleError(ValueError):
    """The file names a global outside the allowed set (it would run code when loaded)."""


class PickleFormatError(ValueError):
    """The file is truncated, corrupt or not of the expected kind."""


def _latin1_encode(text, encoding='utf-8'):
    """Stand-in for ``_codecs.encode``: Python 3 writes bytes in protocol-2 pickles this way."""
    if not isinstance(text, str) or encoding.replace('-', '').lower() != 'latin1':
        raise PickleFormatError('unexpected _codecs.encode(%r, %r)'
                                % (type(text).__name__, encoding))
    return text.encode('latin-1')


# numpy moved numpy.core to numpy._core in 2.0; files may name either.
_NUMPY_FUNCTIONS = (('multiarray', '_reconstruct', _multiarray._reconstruct),
                    ('multiarray', 'scalar', _multiarray.scalar),
                    ('numeric', '_frombuffer', _numeric._frombuffer))
_ALLOWED_GLOBALS = {
    **{('%s.%s' % (package, module), name): function
       for package in ('numpy.core', 'numpy._core')
       for module, name, function in _NUMPY_FUNCTIONS},
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('_codecs', 'encode'): _latin1_encode,
}
_BUILTIN_MODULES = ('__builtin__', 'builtins')
_ALLOWED_BUILTINS = {t.__name__: t for t in
                     (object, set, frozenset, list, dict, tuple, slice, complex)}
# scipy.sparse classes rebuilt from their state; the class may live in any scipy.sparse module.
_SPARSE_CLASSES = frozenset('%s_%s' % (fmt, kind)
                            for fmt in ('csc', 'csr', 'coo') for kind in ('matrix', 'array'))


class ChumpyExpression(object):
    """Marker for a chumpy object pickled without a value (a computed expression such as
    ``a * 2``): evaluating it would need chumpy. Files whose needed arrays are plain values
    still load; whoever needs this entry reports it (see smpl_webuser.serialization)."""

    def __init__(self, qualname):
        self.qualname = qualname

    def __repr__(self):
        return '<chumpy expression %s without a stored value>' % self.qualname


class _Recorded(object):
    """Stand-in for a foreign class: keeps the pickled state for later conversion."""
    qualname = ''

    def __setstate__(self, state):
        self.state = state


class _SparseStub(_Recorded):
    pass


class _ChumpyStub(_Recorded):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals come only from the allowed set above."""

    def __init__(self, fh, path):
        super().__init__(fh, encoding='latin1')
        self._path = path
        self._stubs = {}

    def find_class(self, module, name):
        key = (module, name)
        if key in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[key]
        if module in _BUILTIN_MODULES and name in _ALLOWED_BUILTINS:
            return _ALLOWED_BUILTINS[name]
        if module in ('copy_reg', 'copyreg') and name == '_reconstructor':
            return self._reconstructor
        if (module == 'scipy.sparse' or module.startswith('scipy.sparse.')) \
                and name in _SPARSE_CLASSES:
            return self._stub(key, _SparseStub)
        if module == 'chumpy' or module.startswith('chumpy.'):
            return self._stub(key, _ChumpyStub)
        raise self._refuse(module, name)

    def _refuse(self, module, name):
        return UnsafePickleError(
            "%s: refusing to load '%s.%s' (only numpy, scipy.sparse and chumpy arrays may "
            "appear in this file)" % (self._path, module, name))

    def _stub(self, key, base):
        # One class per pickled global, named like it, so conversion knows what it stood for.
        if key not in self._stubs:
            self._stubs[key] = type(key[1], (base,), {'qualname': '.'.join(key)})
        return self._stubs[key]

    def _reconstructor(self, cls, base, state):
        """Safe ``copy_reg._reconstructor``: protocol 0/1 pickles build our stand-ins this way
        (``state`` is None for plain objects; their state comes with a later BUILD)."""
        if not (isinstance(cls, type) and issubclass(cls, _Recorded) and base is object):
            name = getattr(cls, '__qualname__', type(cls).__name__)
            raise self._refuse('copy_reg._reconstructor', name)
        return cls.__new__(cls)


def _sparse_from_state(stub, path):
    """scipy.sparse matrix from a recorded state (keys differ between scipy versions)."""
    state = getattr(stub, 'state', None)
    if not isinstance(state, dict):
        raise PickleFormatError('%s: %s without a state dict' % (path, stub.qualname))
    shape = state.get('_shape', state.get('shape'))
    name = type(stub).__name__
    try:
        if name.startswith('coo'):
            row, col = state['coords'] if 'coords' in state else (state['row'], state['col'])
            args = (state['data'], (row, col))
        else:
            args = (state['data'], state['indices'], state['indptr'])
        return getattr(sp, name)(args, shape=tuple(int(n) for n in shape))
    except (KeyError, TypeError, ValueError) as exc:
        raise PickleFormatError('%s: cannot rebuild %s (%s)' % (path, stub.qualname,
                                                                one_line(exc))) from exc


def _chumpy_from_state(stub, path, memo):
    """numpy array of a chumpy object's stored value 'x', or a ChumpyExpression marker."""
    state = getattr(stub, 'state', None)
    if not isinstance(state, dict) or 'x' not in state:
        return ChumpyExpression(stub.qualname)
    return np.asarray(_convert(state['x'], path, memo))


def _convert(obj, path, memo):
    """Replace stand-ins by numpy / scipy objects, recursively through containers."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _SparseStub):
        out = _sparse_from_state(obj, path)
    elif isinstance(obj, _ChumpyStub):
        out = _chumpy_from_state(obj, path, memo)
    elif isinstance(obj, dict):
        out = memo[id(obj)] = {}  # registered first: containers may refer to themselves
        out.update((k, _convert(v, path, memo)) for k, v in obj.items())
    elif isinstance(obj, list):
        out = memo[id(obj)] = []
        out.extend(_convert(v, path, memo) for v in obj)
    elif isinstance(obj, tuple):
        out = tuple(_convert(v, path, memo) for v in obj)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        out = memo[id(obj)] = np.empty(obj.shape, dtype=object)
        for index, value in np.ndenumerate(obj):
            out[index] = _convert(value, path, memo)
    else:
        out = obj
    memo[id(obj)] = out
    return out


def _unpickle(fh, path):
    """Restricted load of the pickle at the current position of ``fh``, stand-ins converted."""
    try:
        obj = _RestrictedUnpickler(fh, path).load()
    except (UnsafePickleError, PickleFormatError, MemoryError):
        raise
    except Exception as exc:  # corrupt pickles raise many types; all mean the same to callers
        raise PickleFormatError('%s: truncated or corrupt pickle (%s: %s)'
                                % (path, type(exc).__name__, one_line(exc))) from exc
    return _convert(obj, path, {})


def load_pickle(path):
    """Object stored in the pickle at ``path`` (Python 2 or 3), loaded without running code.
    Memory running out is util.errors.OutOfMemory (not a corrupt file): its arrays need at
    least the file's size."""
    with open(path, 'rb') as fh:
        try:
            return _unpickle(fh, path)
        except MemoryError as exc:
            if isinstance(exc, OutOfMemory):
                raise
            raise out_of_memory(path, 'loading it', exc,
                                os.fstat(fh.fileno()).st_size) from None


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


def load_npy(path):
    """Array stored in the ``.npy`` file at ``path``; object arrays go through the restricted
    unpickler (``np.save`` pickles them), others are read without pickle."""
    with open(path, 'rb') as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version not in _NPY_HEADER_READERS:
                raise ValueError('unsupported format version %s' % (version,))
            _, _, dtype = _NPY_HEADER_READERS[version](fh)
        except ValueError as exc:
            raise PickleFormatError('%s: not a readable .npy file (%s)'
                                    % (path, one_line(exc))) from exc
        if dtype.hasobject:
            array = _unpickle(fh, path)
            if not isinstance(array, np.ndarray):
                raise PickleFormatError('%s: object .npy holds a %s, not an array'
                                        % (path, type(array).__name__))
            return array
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise PickleFormatError('%s: truncated or corrupt .npy file (%s)'
                                % (path, one_line(exc))) from exc


def load_npy_dict(path):
    """The dict of a ``.npy`` written by ``np.save(path, some_dict)`` (a 0-d object array)."""
    array = load_npy(path)
    if array.shape != () or array.dtype != object or not isinstance(array[()], dict):
        raise PickleFormatError('%s: expected np.save of a dict (0-d object array), got an array '
                                'of shape %s and dtype %s' % (path, array.shape, array.dtype))
    return array[()]
