"""Triangle-mesh files: OBJ (with optional UVs and material) and PLY; replaces psbody-mesh.

Writes go through util.io.atomic, so an interrupted run never leaves a half-written mesh behind.
"""
import os
import struct
import warnings

import numpy as np

from util.io.atomic import atomic_path
from util.io.float_format import float_rows, format_rows


class MeshError(IOError):
    """A mesh file cannot be read or written."""


class Mesh(object):
    """Vertices ``v`` (V, 3), faces ``f`` (F, 3), optional UVs ``vt`` (T, 2) / ``ft`` (F, 3)
    and the path of a texture image."""

    def __init__(self, v, f, vt=None, ft=None, texture_filepath=None):
        self.v = _floats(v)
        self.f = np.asarray(f, dtype=np.int64)
        self.vt = None if vt is None else _floats(vt)
        self.ft = None if ft is None else np.asarray(ft, dtype=np.int64)
        self.texture_filepath = texture_filepath

    def write_obj(self, path):
        """Write as OBJ; like psbody-mesh, the material names the texture by its file name
        (the image is expected next to the OBJ)."""
        texture = os.path.basename(self.texture_filepath) if self.texture_filepath else None
        write_obj(path, self.v, self.f, self.vt, self.ft, texture)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (MeshError naming the file on failure)."""
    try:
        with atomic_path(path) as tmp, open(tmp, 'w') as fh:
            fh.write(text)
    except OSError as exc:
        raise MeshError('%s: cannot write (%s)' % (path, exc.strerror or exc)) from exc


def _floats(values):
    """float32 arrays stay float32 (their text is then shorter); anything else -> float64."""
    values = np.asarray(values)
    return values if values.dtype == np.float32 else values.astype(np.float64)


def vertex_text(v, name='mesh'):
    """The vertex lines ``v x y z`` of an OBJ file for vertices ``v`` (V, 3), exactly as
    ObjTopology.obj_text writes them (9 significant digits for float32, 17 otherwise: the
    floats read back exactly). Format a prediction's vertices once with this and hand the text
    to obj_text (``vertex_lines``) of every OBJ that holds them."""
    v = _floats(v)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError('%s: vertices must be (V, 3), got %s' % (name, v.shape))
    return float_rows('v ', v)


def _check_indices(path, name, faces, count=None):
    """(F, 3) ids in [0, count) (count None: only non-negative)."""
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise MeshError('%s: %s must be (F, 3), got %s' % (path, name, faces.shape))
    if faces.size and faces.min() < 0:
        raise MeshError('%s: negative %s index' % (path, name))
    if faces.size and count is not None and faces.max() >= count:
        raise MeshError('%s: %s index out of range [0, %d)' % (path, name, count))


class ObjTopology(object):
    """The vertex-independent part of an OBJ file (UVs and faces), formatted once.

    f (F, 3) vertex ids, 0-based; optional vt (T, 2) and ft (F, 3). Writing many meshes of
    one topology (a batch of predictions) then only formats the vertices.
    """

    def __init__(self, f, vt=None, ft=None, name='mesh'):
        f = np.asarray(f, dtype=np.int64)
        _check_indices(name, 'faces', f)
        if (vt is None) != (ft is None):
            raise MeshError('%s: vt and ft must be given together' % name)
        self.n_verts = int(f.max()) + 1 if f.size else 0
        self.textured = vt is not None
        if vt is None:
            self.text = format_rows('f %d %d %d\n', f + 1)
            return
        vt = _floats(vt)
        ft = np.asarray(ft, dtype=np.int64)
        if vt.ndim != 2 or vt.shape[1] != 2:
            raise MeshError('%s: vt must be (T, 2), got %s' % (name, vt.shape))
        _check_indices(name, 'ft', ft, len(vt))
        if ft.shape != f.shape:
            raise MeshError('%s: ft %s and f %s differ in shape' % (name, ft.shape, f.shape))
        self.text = (float_rows('vt ', vt)
                     + format_rows('f %d/%d %d/%d %d/%d\n', np.stack([f + 1, ft + 1], 2).reshape(-1, 6)))

    def obj_text(self, v, mtl_name=None, name='mesh', vertex_lines=None):
        """OBJ file text for vertices ``v`` (V, 3) in order (exact floats) with this topology;
        with ``mtl_name`` it names that material library (``mtllib``).

        ``vertex_lines``: ``vertex_text(v)`` when the caller has it already, e.g. for a mesh
        and its textured copy (it is not checked against ``v``); otherwise computed here.
        """
        v = _floats(v)
        if v.ndim != 2 or v.shape[1] != 3:
            raise MeshError('%s: vertices must be (V, 3), got %s' % (name, v.shape))
        if self.n_verts > len(v):
            raise MeshError('%s: faces index out of range [0, %d)' % (name, len(v)))
        if mtl_name and not self.textured:
            raise MeshError('%s: a texture needs vt and ft' % name)
        header = 'mtllib %s\nusemtl material_0\n' % mtl_name if mtl_name else ''
        if vertex_lines is None:
            vertex_lines = vertex_text(v, name)
        return ''.join((header, vertex_lines, self.text))

    def write(self, path, v, texture_image_name=None):
        """Write ``obj_text(v)`` to ``path``; with ``texture_image_name`` also NAME.mtl next to
        it, naming that image (as psbody-mesh did)."""
        mtl = mtl_name(path) if texture_image_name else None
        text = self.obj_text(v, mtl, name=path)
        if mtl:
            write_text(os.path.join(os.path.dirname(os.path.abspath(path)), mtl),
                       mtl_text(texture_image_name))
        write_text(path, text)


def mtl_name(obj_path):
    """File name of the material library that goes with the OBJ at ``obj_path``: NAME.mtl."""
    return os.path.splitext(os.path.basename(obj_path))[0] + '.mtl'


def mtl_text(texture_image_name):
    """Material library text: one material whose diffuse map is ``texture_image_name``."""
    return ('newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd %s\n'
            % texture_image_name)


def write_obj(path, v, f, vt=None, ft=None, texture_image_name=None):
    """Write an OBJ: vertices in order (exact floats), 1-based faces; with vt / ft also UVs
    and ``f a/ta ...`` faces; with ``texture_image_name`` also NAME.mtl next to it (map_Kd)."""
    ObjTopology(f, vt, ft, name=path).write(path, v, texture_image_name)


def _fan(polygon):
    """Polygon corner list -> triangles (first corner shared)."""
    return [(polygon[0], polygon[k], polygon[k + 1]) for k in range(1, len(polygon) - 1)]


def _read_bytes(path):
    try:
        with open(path, 'rb') as fh:
            return fh.read()
    except OSError as exc:
        raise MeshError('%s: cannot read (%s)' % (path, exc.strerror or exc)) from exc


def _face_array(path, faces, n_verts):
    out = np.array(faces, dtype=np.int64).reshape(-1, 3)
    _check_indices(path, 'face', out, n_verts)
    return out


def _fields(lines, width, dtype, separators=()):
    """(N, width) array of the numbers on ``lines`` (bytes after 'KEYWORD '), or None unless
    every line is exactly ``width`` numbers single-space separated (counted per line in
    NumPy, no Python loop): 'a/b'-style corners are split at ``separators`` first."""
    if not lines:
        return np.zeros((0, width), dtype)
    text = b'\n'.join(lines)
    for sep in separators:
        text = text.replace(sep, b' ')
    if b'  ' in text or b'\t' in text or b' \n' in text or b'\n ' in text \
            or text[:1] == b' ' or text[-1:] == b' ':
        return None
    spaces = np.char.count(np.array(text.split(b'\n')), b' ')
    if len(spaces) != len(lines) or (spaces != width - 1).any():
        return None
    with warnings.catch_warnings():  # a field that does not parse: ValueError (NumPy >= 2.3),
        warnings.simplefilter('ignore', DeprecationWarning)  # before: the array cut short
        try:
            values = np.fromstring(text, dtype=dtype, sep=' ')
        except ValueError:
            return None
    return values.reshape(-1, width) if values.size == width * len(lines) else None


# a face corner's forms: (slashes, '//'s) -> numbers per corner
_CORNER_WIDTH = {(0, 0): 1, (1, 0): 2, (2, 0): 3, (2, 1): 2}


def _bulk_obj(data):
    """(v, vt, f, ft) of OBJ bytes in which every v line has 3 values, every vt line 2 and
    every f line 3 corners of one form ('a', 'a/b', 'a/b/c' or 'a//c', positive indices),
    all single-space separated: the common case (every file this project writes), read a
    keyword at a time, several times faster than line by line. None for anything else (then
    read_obj's loop reads it, naming the line of an error). f, ft 0-based; ft None without
    texture indices."""
    lines = data.splitlines()
    v = _fields([ln[2:] for ln in lines if ln[:2] == b'v '], 3, np.float64)
    vt = _fields([ln[3:] for ln in lines if ln[:3] == b'vt '], 2, np.float64)
    faces = [ln[2:] for ln in lines if ln[:2] == b'f ']
    corner = faces[0].split(b' ', 1)[0] if faces else b''
    form = (corner.count(b'/'), corner.count(b'//'))
    if v is None or vt is None or form not in _CORNER_WIDTH \
            or len(lines) != len([ln for ln in lines if ln[:1] not in (b'v', b'f')]) + len(v) \
            + len(vt) + len(faces):
        return None  # and a 'v\t', 'vn', 'f\t' ... line: the loop decides
    slashes = np.char.count(np.array(faces), b'/') if faces else np.zeros(0)
    doubled = np.char.count(np.array(faces), b'//') if faces else np.zeros(0)
    if (slashes != 3 * form[0]).any() or (doubled != 3 * form[1]).any():
        return None
    width = _CORNER_WIDTH[form]
    corners = _fields(faces, 3 * width, np.int64, (b'//', b'/'))
    if corners is None or (corners.size and corners.min() < 1):
        return None  # relative (negative) or zero indices: the loop says which line
    corners = corners.reshape(-1, 3, width) - 1
    return v, vt, corners[:, :, 0], corners[:, :, 1] if form in ((1, 0), (2, 0)) else None


def read_obj(path):
    """Mesh from an OBJ file (v, vt and f lines; 'a', 'a/b', 'a/b/c', 'a//c' corners;
    polygons fan-triangulated). ``ft`` is set when every face has texture indices."""
    data = _read_bytes(path)
    bulk = _bulk_obj(data)
    if bulk is not None:
        v, vt, f, ft = bulk
        f = _face_array(path, f, len(v))
        if ft is None or not len(f):
            return Mesh(v, f)
        _check_indices(path, 'texture face', ft, len(vt))
        return Mesh(v, f, vt, ft)
    v, vt, faces, tex_faces = [], [], [], []
    for number, line in enumerate(data.decode('latin-1').splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] not in ('v', 'vt', 'f'):
            continue
        try:
            if fields[0] == 'v':
                v.append([float(x) for x in fields[1:4]])
                if len(v[-1]) != 3:
                    raise ValueError('needs 3 coordinates')
            elif fields[0] == 'vt':
                vt.append([float(x) for x in fields[1:3]])
                if len(vt[-1]) != 2:
                    raise ValueError('needs 2 coordinates')
            else:
                corners = [c.split('/') for c in fields[1:]]
                if len(corners) < 3:
                    raise ValueError('needs 3 corners')
                faces.extend(_fan([int(c[0]) - 1 for c in corners]))
                has_uv = all(len(c) > 1 and c[1] for c in corners)
                tex_faces.extend(_fan([int(c[1]) - 1 for c in corners]) if has_uv else [None])
        except ValueError as exc:
            raise MeshError('%s:%d: bad %s line (%s)' % (path, number, fields[0], exc)) from exc
    v = np.array(v, dtype=np.float64).reshape(-1, 3)
    f = _face_array(path, faces, len(v))
    ft = None
    if faces and None not in tex_faces:
        ft = np.array(tex_faces, dtype=np.int64).reshape(-1, 3)
        _check_indices(path, 'texture face', ft, len(vt))
    return Mesh(v, f, np.array(vt, dtype=np.float64).reshape(-1, 2) if ft is not None else None,
                ft)


_PLY_TYPES = {'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2',
              'int16': 'i2', 'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4',
              'uint': 'u4', 'uint32': 'u4', 'float': 'f4', 'float32': 'f4', 'double': 'f8',
              'float64': 'f8'}
_PLY_FORMATS = {'ascii': None, 'binary_little_endian': '<', 'binary_big_endian': '>'}


def _ply_header(data):
    """-> (endian prefix or None for ascii, elements [(name, count, props)], body offset).
    A prop is (name, dtype) or (name, (count dtype, item dtype)) for a list."""
    end = data.find(b'end_header')
    newline = data.find(b'\n', end)
    if not data.startswith(b'ply') or end < 0 or newline < 0:
        raise ValueError('not a PLY file (no ply ... end_header)')
    endian, elements = None, []
    for line in data[:end].decode('latin-1').splitlines()[1:]:
        fields = line.split()
        if not fields or fields[0] in ('comment', 'obj_info'):
            continue
        if fields[0] == 'format':
            if fields[1] not in _PLY_FORMATS:
                raise ValueError('unknown format %r' % fields[1])
            endian = _PLY_FORMATS[fields[1]]
        elif fields[0] == 'element':
            elements.append((fields[1], int(fields[2]), []))
        elif fields[0] == 'property' and fields[1] == 'list':
            elements[-1][2].append((fields[4], (_PLY_TYPES[fields[2]], _PLY_TYPES[fields[3]])))
        elif fields[0] == 'property':
            elements[-1][2].append((fields[2], _PLY_TYPES[fields[1]]))
        else:
            raise ValueError('unexpected header line %r' % line)
    return endian, elements, newline + 1


def _ply_ascii_element(tokens, pos, count, props, endian=None):
    """tokens: the body split on whitespace ->
    ({prop name: values (count,) array, or list of arrays for list props}, new pos)."""
    if all(isinstance(kind, str) for _, kind in props):
        width = len(props)
        block = np.array(tokens[pos:pos + count * width], dtype=np.float64)
        block = block.reshape(count, width)  # fails on truncated files
        return {name: block[:, i] for i, (name, _) in enumerate(props)}, pos + count * width
    columns = {name: [] for name, _ in props}
    for _ in range(count):
        for name, kind in props:
            if isinstance(kind, str):
                columns[name].append(float(tokens[pos]))
                pos += 1
            else:
                n = int(tokens[pos])
                columns[name].append(np.array(tokens[pos + 1:pos + 1 + n], dtype=np.float64))
                pos += 1 + n
    return columns, pos


def _ply_binary_element(data, pos, count, props, endian):
    """Binary counterpart of _ply_ascii_element."""
    if all(isinstance(kind, str) for _, kind in props):
        dtype = np.dtype([(name, endian + kind) for name, kind in props])
        block = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        return {name: block[name] for name, _ in props}, pos + count * dtype.itemsize
    columns = {name: [] for name, _ in props}
    codes = {kind: endian + np.dtype(kind).char for _, kinds in props
             for kind in (kinds if isinstance(kinds, tuple) else (kinds,))}
    for _ in range(count):
        for name, kind in props:
            if isinstance(kind, str):
                columns[name].append(struct.unpack_from(codes[kind], data, pos)[0])
                pos += np.dtype(kind).itemsize
            else:
                n = struct.unpack_from(codes[kind[0]], data, pos)[0]
                pos += np.dtype(kind[0]).itemsize
                columns[name].append(np.array(struct.unpack_from(
                    '%s%d%s' % (endian, n, codes[kind[1]][1]), data, pos)))
                pos += n * np.dtype(kind[1]).itemsize
    return columns, pos


def read_ply(path):
    """Mesh from a PLY file (ascii or binary): vertex x, y, z and face vertex_indices (or
    vertex_index) lists, polygons fan-triangulated; other elements are skipped."""
    data = _read_bytes(path)
    try:
        endian, elements, pos = _ply_header(data)
        if endian is None:
            source, pos, read = data[pos:].decode('latin-1').split(), 0, _ply_ascii_element
        else:
            source, read = data, _ply_binary_element
        columns = {}
        for name, count, props in elements:
            columns[name], pos = read(source, pos, count, props, endian)
        vertex = columns['vertex']
        v = np.stack([np.asarray(vertex[axis], dtype=np.float64) for axis in 'xyz'], axis=1)
        face = columns.get('face', {})
        polygons = face.get('vertex_indices', face.get('vertex_index', []))
        triangles = [t for polygon in polygons for t in _fan([int(i) for i in polygon])]
    except (ValueError, KeyError, IndexError, struct.error) as exc:
        raise MeshError('%s: unreadable PLY (%s: %s)' % (path, type(exc).__name__, exc)) from exc
    return Mesh(v, _face_array(path, triangles, len(v)))


_READERS = {'.obj': read_obj, '.ply': read_ply}


def load_mesh(path):
    """Mesh from an .obj or .ply file."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in _READERS:
        raise MeshError('%s: unknown mesh format %r (expected .obj or .ply)' % (path, ext))
    return _READERS[ext](path)
