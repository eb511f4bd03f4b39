"""Read the triangle mesh and morph targets of a glTF 2.0 binary (.glb), for the report's viewer.

A small reader of the container (Khronos glTF 2.0 spec, "GLB File Format Specification") and
its accessors: the 12-byte header, the JSON and BIN chunks, bufferViews (with byteStride),
accessors of any component type (normalized integers scaled as the spec's "Animations" table
says), sparse accessors. It reads the first primitive of the first mesh: POSITION, the
indices, each morph target's POSITION deltas, the target names (``mesh.extras.targetNames``,
the convention Blender and three.js use), the default weights (``mesh.weights``), and
TEXCOORD_0 with its material's base colour image when both are there. Skins and animations
are not read (the layout constants are util.io.gltf's, the writer's). Only the GLB's own
binary chunk is read; a buffer with a ``uri`` (an external or data: file) is refused: the
file is then not self-contained.
"""
import collections
import json
import struct

import numpy as np

from util.io.gltf import CHUNK_BIN, CHUNK_JSON, GLB_MAGIC, GLB_VERSION
from util.io.gltf import COMPONENT_TYPES as WRITTEN_AS

TRIANGLES = 4
COMPONENT_TYPES = {code: dtype.type for dtype, code in WRITTEN_AS.items()}  # code -> dtype
# normalized integers -> float (glTF 2.0, "Animations": c / max, at least -1 for signed)
NORMALIZED_MAX = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
TYPE_SIZES = {'SCALAR': 1, 'VEC2': 2, 'VEC3': 3, 'VEC4': 4, 'MAT2': 4, 'MAT3': 9, 'MAT4': 16}

GlbMesh = collections.namedtuple('GlbMesh', 'positions indices targets target_names weights '
                                            'uvs image')
GlbMesh.__doc__ = """positions (N,3) float32; indices (F,3) int64 triangles; targets (T,N,3)
float32 POSITION deltas of the morph targets (T may be 0); target_names [T] str (exp00 ... when
the file names them, else target0 ...); weights (T,) float32 default weights; uvs (N,2) float32
TEXCOORD_0 as glTF has it (origin top left) and image (mime type, bytes) of the material's
base colour texture, both None unless the file has both."""


class GlbError(ValueError):
    """A .glb file cannot be read; the message is one line naming the file."""


def _chunks(data, name):
    """(JSON dict, BIN bytes or b'') of the GLB bytes ``data``."""
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise GlbError('%s: not a glTF binary (no glTF header)' % name)
    version, length = struct.unpack_from('<II', data, 4)
    if version != GLB_VERSION:
        raise GlbError('%s: glTF version %d (only 2 is read)' % (name, version))
    if length > len(data):
        raise GlbError('%s: cut short (%d of %d bytes)' % (name, len(data), length))
    offset, gltf, binary = 12, None, b''
    while offset + 8 <= length:
        size, kind = struct.unpack_from('<II', data, offset)
        body = data[offset + 8:offset + 8 + size]
        if len(body) != size:
            raise GlbError('%s: a chunk runs past the end of the file' % name)
        if kind == CHUNK_JSON and gltf is None:
            try:
                gltf = json.loads(body.decode('utf-8'))
            except ValueError as e:
                raise GlbError('%s: bad JSON chunk (%s)' % (name, e)) from None
        elif kind == CHUNK_BIN and not binary:
            binary = body
        offset += 8 + size + (-size % 4)  # chunks are 4-byte aligned
    if not isinstance(gltf, dict):
        raise GlbError('%s: no JSON chunk' % name)
    return gltf, binary


def _element(items, index, what, name):
    if not isinstance(items, list) or not isinstance(index, int) or not 0 <= index < len(items):
        raise GlbError('%s: %s %r does not exist' % (name, what, index))
    return items[index]


def _view_bytes(gltf, binary, index, name):
    """(bytes of bufferView ``index``, its byteStride or None)."""
    view = _element(gltf.get('bufferViews'), index, 'bufferView', name)
    buffer = _element(gltf.get('buffers'), view.get('buffer', 0), 'buffer', name)
    if 'uri' in buffer:
        raise GlbError('%s: a buffer in another file (%s): not self-contained'
                       % (name, str(buffer['uri'])[:40]))
    start = view.get('byteOffset', 0)
    end = start + view['byteLength']
    if end > len(binary):
        raise GlbError('%s: bufferView %d runs past the binary chunk' % (name, index))
    return binary[start:end], view.get('byteStride')


def _strided(raw, offset, count, dtype, width, stride, name):
    """(count, width) array of ``dtype`` elements read from ``raw`` at ``offset``, rows
    ``stride`` bytes apart (None: packed)."""
    item = np.dtype(dtype).itemsize * width
    stride = stride or item
    if count and offset + stride * (count - 1) + item > len(raw):
        raise GlbError('%s: an accessor runs past its bufferView' % name)
    if count == 0:
        return np.zeros((0, width), dtype)
    rows = np.ndarray((count, width), dtype=np.dtype(dtype).newbyteorder('<'),
                      buffer=raw, offset=offset,
                      strides=(stride, np.dtype(dtype).itemsize))
    return np.array(rows, dtype=dtype)


def read_accessor(gltf, binary, index, name='glb'):
    """Accessor ``index`` -> (count, components) array: float32 for floats and normalized
    integers, the integer type otherwise; a sparse accessor's values substituted."""
    accessor = _element(gltf.get('accessors'), index, 'accessor', name)
    ctype = accessor.get('componentType')
    if ctype not in COMPONENT_TYPES or accessor.get('type') not in TYPE_SIZES:
        raise GlbError('%s: accessor %d has type %s %s' % (name, index, accessor.get('type'),
                                                         ctype))
    dtype, width, count = COMPONENT_TYPES[ctype], TYPE_SIZES[accessor['type']], accessor['count']
    if 'bufferView' in accessor:
        raw, stride = _view_bytes(gltf, binary, accessor['bufferView'], name)
        values = _strided(raw, accessor.get('byteOffset', 0), count, dtype, width, stride, name)
    else:  # all zeros, unless sparse says otherwise
        values = np.zeros((count, width), dtype)
    sparse = accessor.get('sparse')
    if sparse:
        spec = sparse['indices']
        raw, _ = _view_bytes(gltf, binary, spec['bufferView'], name)
        where = _strided(raw, spec.get('byteOffset', 0), sparse['count'],
                         COMPONENT_TYPES[spec['componentType']], 1, None, name)[:, 0]
        raw, _ = _view_bytes(gltf, binary, sparse['values']['bufferView'], name)
        new = _strided(raw, sparse['values'].get('byteOffset', 0), sparse['count'], dtype,
                       width, None, name)
        if where.size and where.max() >= count:
            raise GlbError('%s: sparse index out of range in accessor %d' % (name, index))
        values[where.astype(np.int64)] = new
    if ctype == 5126:
        return values
    if accessor.get('normalized'):
        return np.maximum(values / NORMALIZED_MAX[ctype], -1.0).astype(np.float32)
    return values


def parse_glb(data, name='glb'):
    """GLB bytes -> GlbMesh of the first primitive of the first mesh (see the module)."""
    gltf, binary = _chunks(data, name)
    try:
        mesh = _element(gltf.get('meshes'), 0, 'mesh', name)
        primitive = _element(mesh.get('primitives'), 0, 'primitive', name)
        if primitive.get('mode', TRIANGLES) != TRIANGLES:
            raise GlbError('%s: the primitive is not triangles (mode %s)'
                           % (name, primitive.get('mode')))
        if 'POSITION' not in primitive.get('attributes', {}):
            raise GlbError('%s: the primitive has no POSITION' % name)
        positions = read_accessor(gltf, binary, primitive['attributes']['POSITION'], name)
        if positions.shape[1] != 3 or positions.dtype != np.float32:
            raise GlbError('%s: POSITION is not float VEC3' % name)
        if 'indices' in primitive:
            indices = read_accessor(gltf, binary, primitive['indices'], name)
            indices = indices.reshape(-1).astype(np.int64)
        else:
            indices = np.arange(len(positions), dtype=np.int64)
        if indices.size % 3 or (indices.size and indices.max() >= len(positions)):
            raise GlbError('%s: indices are not triangles of its %d vertices'
                           % (name, len(positions)))
        targets = [read_accessor(gltf, binary, t['POSITION'], name) if 'POSITION' in t
                   else np.zeros_like(positions) for t in primitive.get('targets', [])]
        if any(t.shape != positions.shape for t in targets):
            raise GlbError('%s: a morph target does not match POSITION' % name)
        names = (mesh.get('extras') or {}).get('targetNames')
        if not (isinstance(names, list) and len(names) == len(targets)):
            names = ['target%d' % k for k in range(len(targets))]
        weights = mesh.get('weights') or [0.0] * len(targets)
        if len(weights) != len(targets):
            raise GlbError('%s: %d default weights for %d morph targets'
                           % (name, len(weights), len(targets)))
        uvs, image = _texture(gltf, binary, primitive, len(positions), name)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, GlbError):
            raise
        raise GlbError('%s: malformed glTF (%s: %s)' % (name, type(e).__name__, e)) from None
    stacked = (np.stack(targets).astype(np.float32) if targets
               else np.zeros((0,) + positions.shape, np.float32))
    return GlbMesh(positions.astype(np.float32), indices.reshape(-1, 3), stacked,
                   [str(n) for n in names], np.asarray(weights, dtype=np.float32), uvs, image)


def _texture(gltf, binary, primitive, count, name):
    """(uvs (count,2) float32, (mime type, bytes)) of the primitive's TEXCOORD_0 and its
    material's base colour image (one stored in the binary chunk), or (None, None)."""
    if 'TEXCOORD_0' not in primitive.get('attributes', {}) or 'material' not in primitive:
        return None, None
    material = _element(gltf.get('materials'), primitive['material'], 'material', name)
    ref = (material.get('pbrMetallicRoughness') or {}).get('baseColorTexture')
    if not ref or ref.get('texCoord', 0) != 0:
        return None, None
    texture = _element(gltf.get('textures'), ref['index'], 'texture', name)
    image = _element(gltf.get('images'), texture.get('source'), 'image', name)
    if 'bufferView' not in image:
        return None, None  # an image file next to it: not self-contained, not shown
    uvs = read_accessor(gltf, binary, primitive['attributes']['TEXCOORD_0'], name)
    if uvs.shape != (count, 2):
        raise GlbError('%s: TEXCOORD_0 does not match POSITION' % name)
    data, _ = _view_bytes(gltf, binary, image['bufferView'], name)
    return uvs.astype(np.float32), (str(image.get('mimeType', 'image/png')), bytes(data))


def read_glb(path):
    """The GlbMesh of the .glb file at ``path``; GlbError (one line naming it) otherwise."""
    try:
        with open(path, 'rb') as fh:
            data = fh.read()
    except OSError as e:
        raise GlbError('%s: cannot read (%s)' % (path, e.strerror or e)) from None
    return parse_glb(data, path)
