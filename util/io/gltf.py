"""glTF 2.0 binary files (.glb): one JSON document and one binary buffer, written with struct
and json only (no glTF library). What the file means is the caller's (util.outputs.glb); this
module lays out the bytes: buffer views, accessors, the GLB container (docs/formats.md §16).
"""
import json
import struct

import numpy as np

GLB_MAGIC = b'glTF'
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # 'JSON' little-endian
CHUNK_BIN = 0x004E4942   # 'BIN\0'

ARRAY_BUFFER = 34962          # bufferView.target of vertex attributes
ELEMENT_ARRAY_BUFFER = 34963  # bufferView.target of indices

COMPONENT_TYPES = {np.dtype(np.int8): 5120, np.dtype(np.uint8): 5121,
                   np.dtype(np.int16): 5122, np.dtype(np.uint16): 5123,
                   np.dtype(np.uint32): 5125, np.dtype(np.float32): 5126}
ELEMENT_TYPES = {(): 'SCALAR', (2,): 'VEC2', (3,): 'VEC3', (4,): 'VEC4', (4, 4): 'MAT4'}


def _pad(data, fill):
    """``data`` padded with ``fill`` bytes to a multiple of 4 (glTF aligns chunks and views)."""
    return data + fill * (-len(data) % 4)


class BinaryBuffer:
    """The one binary buffer of a GLB being built, with its bufferViews and accessors.

    Each view starts on a 4-byte boundary (every component type's alignment). ``view`` and
    ``accessor`` return the index to cite in the document; ``json_parts`` gives the three
    arrays for it.
    """

    def __init__(self):
        self.parts, self.size = [], 0
        self.views, self.accessors = [], []

    def view(self, data, target=None):
        """Append ``data`` (bytes) as a bufferView -> its index."""
        view = {'buffer': 0, 'byteOffset': self.size, 'byteLength': len(data)}
        if target is not None:
            view['target'] = target
        padded = _pad(bytes(data), b'\0')
        self.parts.append(padded)
        self.size += len(padded)
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array, target=None, bounds=False, normalized=False):
        """Append ``array`` (N,), (N,C) or (N,4,4) of a glTF component dtype (float32, uint8,
        uint16, uint32, int8, int16) as a tightly packed accessor -> its index. A (4,4)
        matrix is written column-major, as glTF reads it. ``bounds``: write min and max
        (glTF requires them for POSITION and animation inputs); the values are those of the
        stored components, so readers' checks match exactly."""
        array = np.asarray(array)
        if array.dtype not in COMPONENT_TYPES:
            raise ValueError('glTF accessor: dtype %s is not a glTF component type' % array.dtype)
        element = array.shape[1:]
        if element not in ELEMENT_TYPES:
            raise ValueError('glTF accessor: element shape %s is not SCALAR, VEC2-4 or MAT4'
                             % (element,))
        if element == (4, 4):
            array = array.transpose(0, 2, 1)  # row-major numpy -> column-major glTF
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<'))
        accessor = {'bufferView': self.view(data.tobytes(), target), 'byteOffset': 0,
                    'componentType': COMPONENT_TYPES[array.dtype], 'count': len(array),
                    'type': ELEMENT_TYPES[element]}
        if normalized:
            accessor['normalized'] = True
        if bounds and len(array):
            flat = data.reshape(len(array), -1)
            accessor['min'] = [_number(x) for x in flat.min(axis=0)]
            accessor['max'] = [_number(x) for x in flat.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def bytes(self):
        """The buffer's bytes (a multiple of 4 long)."""
        return b''.join(self.parts)

    def json_parts(self):
        """{'buffers', 'bufferViews', 'accessors'} of the document."""
        return {'buffers': [{'byteLength': self.size}], 'bufferViews': self.views,
                'accessors': self.accessors}


def _number(value):
    """A numpy scalar as a JSON number: ints stay ints, floats are written exactly (a float32
    widened to float64 is the same number, and json writes the shortest exact repr)."""
    return int(value) if np.issubdtype(type(value), np.integer) else float(value)


def glb_bytes(document, binary):
    """GLB container: 12-byte header, the JSON chunk (``document``, padded with spaces), the
    BIN chunk (``binary``, padded with zeros; left out when empty) -> bytes."""
    text = json.dumps(document, separators=(',', ':'), allow_nan=False).encode('utf-8')
    chunks = [(CHUNK_JSON, _pad(text, b' '))]
    if binary:
        chunks.append((CHUNK_BIN, _pad(bytes(binary), b'\0')))
    body = b''.join(struct.pack('<II', len(data), kind) + data for kind, data in chunks)
    return struct.pack('<4sII', GLB_MAGIC, GLB_VERSION, 12 + len(body)) + body
