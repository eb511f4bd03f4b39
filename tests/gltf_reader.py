"""A small GLB reader for tests and bench/bench_glb.py, written from the glTF 2.0 specification
(not from util/io/gltf.py): the container, accessors, and the mesh a skinned, morphed file
describes, evaluated with its own linear blend skinning; and the Khronos glTF Validator run on
files (node, tests/gltf: ``npm ci --prefix tests/gltf``)."""
import json
import os
import shutil
import struct
import subprocess

import numpy as np

GLTF_TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gltf')

COMPONENTS = {5120: '<i1', 5121: '<u1', 5122: '<i2', 5123: '<u2', 5125: '<u4', 5126: '<f4'}
SIZES = {'SCALAR': 1, 'VEC2': 2, 'VEC3': 3, 'VEC4': 4, 'MAT4': 16}


def parse_glb(data):
    """GLB bytes -> (document dict, BIN chunk bytes), checking the container's framing."""
    magic, version, length = struct.unpack_from('<4sII', data, 0)
    assert (magic, version, length) == (b'glTF', 2, len(data))
    chunks, offset = [], 12
    while offset < len(data):
        size, kind = struct.unpack_from('<II', data, offset)
        assert size % 4 == 0
        chunks.append((kind, data[offset + 8:offset + 8 + size]))
        offset += 8 + size
    assert [kind for kind, _ in chunks] == [0x4E4F534A, 0x004E4942]
    return json.loads(chunks[0][1].decode('utf-8')), chunks[1][1]


def read_accessor(doc, binary, index):
    """Accessor ``index`` -> numpy array (N,), (N,C) or (N,4,4) (matrices row-major)."""
    acc = doc['accessors'][index]
    view = doc['bufferViews'][acc['bufferView']]
    dtype = np.dtype(COMPONENTS[acc['componentType']])
    n = SIZES[acc['type']]
    start = view.get('byteOffset', 0) + acc.get('byteOffset', 0)
    assert 'byteStride' not in view
    values = np.frombuffer(binary, dtype, acc['count'] * n, start)
    assert start + values.nbytes <= view.get('byteOffset', 0) + view['byteLength']
    if acc['type'] == 'MAT4':
        return values.reshape(-1, 4, 4).transpose(0, 2, 1)  # stored column-major
    return values.reshape(-1, n) if n > 1 else values


def quat_matrix(q):
    """(x, y, z, w) unit quaternion -> 3x3 rotation (the textbook formula)."""
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def evaluate(doc, binary, weights=None, rotations=None):
    """The skinned, morphed mesh the file describes -> (V',3) float64: base + sum_k weight_k
    target_k, then sum_i WEIGHTS_0_i (world(JOINTS_0_i) inverseBind(JOINTS_0_i)) v.
    weights: morph weights (default: the mesh's); rotations: {node: (x,y,z,w)} overriding the
    nodes' own (an animation's keyframe)."""
    prim = doc['meshes'][0]['primitives'][0]
    attr = prim['attributes']
    verts = read_accessor(doc, binary, attr['POSITION']).astype(np.float64)
    weights = doc['meshes'][0]['weights'] if weights is None else weights
    for w, target in zip(weights, prim['targets']):
        verts = verts + w * read_accessor(doc, binary, target['POSITION'])
    nodes = doc['nodes']
    parent = {c: i for i, node in enumerate(nodes) for c in node.get('children', [])}
    world = {}

    def world_of(i):
        if i not in world:
            local = np.eye(4)
            q = (rotations or {}).get(i, nodes[i].get('rotation', [0, 0, 0, 1]))
            local[:3, :3] = quat_matrix(np.asarray(q, dtype=np.float64))
            local[:3, 3] = nodes[i].get('translation', [0, 0, 0])
            world[i] = local if i not in parent else world_of(parent[i]) @ local
        return world[i]

    skin = doc['skins'][0]
    inverse_bind = read_accessor(doc, binary, skin['inverseBindMatrices'])
    joint_mats = np.stack([world_of(node) @ inverse_bind[j].astype(np.float64)
                           for j, node in enumerate(skin['joints'])])
    joints = read_accessor(doc, binary, attr['JOINTS_0']).astype(np.int64)
    skin_w = read_accessor(doc, binary, attr['WEIGHTS_0']).astype(np.float64)
    blended = np.einsum('vi,viab->vab', skin_w, joint_mats[joints])
    return np.einsum('vab,vb->va', blended, np.c_[verts, np.ones(len(verts))])[:, :3]


def validator_reports(paths):
    """{path: the Khronos glTF Validator's report} of .glb files; AssertionError naming the
    fix when the validator is not installed."""
    node = shutil.which('node')
    installed = os.path.isdir(os.path.join(GLTF_TOOLS, 'node_modules', 'gltf-validator'))
    assert node and installed, ('the glTF Validator is not installed: run npm ci --prefix '
                                'tests/gltf (needs node)')
    run = subprocess.run([node, os.path.join(GLTF_TOOLS, 'validate.mjs')] + list(paths),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
