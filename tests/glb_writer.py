"""A minimal glTF 2.0 binary writer for tests (independent of util.io.glb_read): a triangle
mesh with morph targets, laid out the way the spec allows (interleaved POSITION with a
byteStride, sparse targets, normalized integer targets), to check the reader against."""
import json
import struct

import numpy as np


def _pad(data, fill=b'\0'):
    return data + fill * (-len(data) % 4)


def glb_bytes(positions, triangles, targets=(), names=None, weights=None, stride=None,
              sparse=False, normalized=False, extra_json=None, uvs=None, png=None):
    """positions (N,3) float32; triangles (F,3); targets [(N,3)] POSITION deltas.

    stride: bytes between POSITION rows (> 12: interleaved with padding);
    sparse: targets stored as sparse accessors (only the rows that move);
    normalized: targets stored as normalized int16 (round(delta * 32767); deltas within
    [-1, 1]), which a reader turns back into c / 32767;
    extra_json: dict merged into the top-level JSON (e.g. a buffer with a uri);
    uvs (N,2) and png (bytes): TEXCOORD_0 and a material whose base colour is that image."""
    positions = np.asarray(positions, np.float32)
    n = len(positions)
    bin_ = bytearray()
    views, accessors = [], []

    def view(data, byte_stride=None):
        offset = len(bin_)
        bin_.extend(_pad(bytes(data)))
        views.append({'buffer': 0, 'byteOffset': offset, 'byteLength': len(data)})
        if byte_stride:
            views[-1]['byteStride'] = byte_stride
        return len(views) - 1

    def accessor(**fields):
        accessors.append(fields)
        return len(accessors) - 1

    if stride:
        rows = bytearray()
        for p in positions:
            rows.extend(struct.pack('<3f', *p) + b'\xab' * (stride - 12))
        pos_view = view(rows, stride)
    else:
        pos_view = view(positions.tobytes())
    pos = accessor(bufferView=pos_view, componentType=5126, count=n, type='VEC3',
                   min=positions.min(0).tolist(), max=positions.max(0).tolist())
    idx = accessor(bufferView=view(np.asarray(triangles, '<u4').tobytes()), componentType=5125,
                   count=int(np.size(triangles)), type='SCALAR')
    target_specs = []
    for delta in targets:
        delta = np.asarray(delta, np.float32)
        if sparse:
            rows = np.nonzero(np.abs(delta).sum(1))[0].astype('<u2')
            a = accessor(componentType=5126, count=n, type='VEC3', sparse={
                'count': int(len(rows)),
                'indices': {'bufferView': view(rows.tobytes()), 'componentType': 5123},
                'values': {'bufferView': view(delta[rows].astype('<f4').tobytes())}})
        elif normalized:
            q = np.round(np.clip(delta, -1, 1) * 32767).astype('<i2')
            a = accessor(bufferView=view(q.tobytes()), componentType=5122, normalized=True,
                         count=n, type='VEC3')
        else:
            a = accessor(bufferView=view(delta.astype('<f4').tobytes()), componentType=5126,
                         count=n, type='VEC3')
        target_specs.append({'POSITION': a})
    primitive = {'attributes': {'POSITION': pos}, 'indices': idx, 'mode': 4}
    mesh = {'primitives': [primitive]}
    textured = {}
    if uvs is not None:
        primitive['attributes']['TEXCOORD_0'] = accessor(
            bufferView=view(np.asarray(uvs, '<f4').tobytes()), componentType=5126, count=n,
            type='VEC2')
        primitive['material'] = 0
        textured = {'materials': [{'pbrMetallicRoughness': {'baseColorTexture': {'index': 0}}}],
                    'textures': [{'source': 0}],
                    'images': [{'bufferView': view(png), 'mimeType': 'image/png'}]}
    if target_specs:
        primitive['targets'] = target_specs
        mesh['weights'] = [float(w) for w in (weights if weights is not None
                                              else [0.0] * len(target_specs))]
        if names is not None:
            mesh['extras'] = {'targetNames': list(names)}
    gltf = {'asset': {'version': '2.0', 'generator': 'tests/glb_writer.py'},
            'scene': 0, 'scenes': [{'nodes': [0]}], 'nodes': [{'mesh': 0}], 'meshes': [mesh],
            'accessors': accessors, 'bufferViews': views,
            'buffers': [{'byteLength': len(bin_)}]}
    gltf.update(textured)
    gltf.update(extra_json or {})
    text = _pad(json.dumps(gltf).encode(), b' ')
    body = struct.pack('<II', len(text), 0x4E4F534A) + text
    body += struct.pack('<II', len(bin_), 0x004E4942) + bytes(bin_)
    return b'glTF' + struct.pack('<II', 2, 12 + len(body)) + body
