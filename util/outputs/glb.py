"""--save_glb: glb/NAME.glb, the predicted head as a FLAME rig in one glTF 2.0 binary
(docs/formats.md §16).

Base mesh: the predicted shape with zero expression and zero pose (the vertices of
neutral_mesh/NAME.obj), the first V vertices in FLAME's order, the copies UV seams need after
them. Morph targets exp00, exp01, ...: FLAME's expression components, one unit each, weighted
by the predicted expression. A skin of FLAME's joints, with the predicted pose as their
rotations, so the file as loaded shows mesh/NAME.obj (up to what §16 lists as approximated).
A video track's file also animates the weights and rotations over the clip's time.
"""
import collections

import numpy as np

from smpl_webuser.flame_params import POSED_JOINTS, full_pose, neutral_vertices
from util.face.smoothing import median_rows
from util.io.gltf import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, BinaryBuffer, glb_bytes
from util.outputs.naming import clip_output_path, output_path
from util.render.geometry import vertex_normals

N_SHAPE = 300          # FLAME's shape components; the expression components follow them
MAX_INFLUENCES = 4     # joints per vertex in JOINTS_0 / WEIGHTS_0 (one set, as most tools read)
JOINT_NAMES = ('global', 'neck', 'jaw', 'eye_left', 'eye_right')  # FLAME's joint order
GENERATOR = 'RingNet port (util/outputs/glb.py)'
# glTF sampler constants
LINEAR, CLAMP_TO_EDGE = 9729, 33071

GlbTexture = collections.namedtuple('GlbTexture', 'png vt ft')
GlbTexture.__doc__ = """The UV texture to embed: png (bytes of texture/NAME.png), vt (T,2)
OBJ-convention UVs (v up) and ft (F,3) UV ids per FLAME face (util.render.texture_data)."""

Animation = collections.namedtuple('Animation', 'time_s pose expression')
Animation.__doc__ = """Keyframes: time_s (K,) seconds, increasing; pose (K,6) global and jaw
axis-angle; expression (K,E). Every row is a pose (a track's missing rows filled first)."""


def target_name(k):
    """Name of expression morph target ``k``: exp00, exp01, ..."""
    return 'exp%02d' % k


def expression_basis(flame, n_expression, n_shape=N_SHAPE):
    """(E,V,3) FLAME's first ``n_expression`` expression components (shapedirs columns
    n_shape, n_shape + 1, ...): the vertex offsets of one unit of each coefficient."""
    n_all = flame.shapedirs.shape[2]
    if n_expression > n_all - n_shape:
        raise ValueError('%d expression parameters do not fit the model\'s %d expression '
                         'components' % (n_expression, max(n_all - n_shape, 0)))
    return np.moveaxis(flame.shapedirs[:, :, n_shape:n_shape + n_expression], 2, 0)


def rest_joints(flame, base):
    """(J,3) FLAME's joints regressed from the (V,3) base mesh (shape only: the rig's joints
    do not follow the expression, docs/formats.md §16)."""
    return np.asarray(flame.J_regressor @ base, dtype=np.float64)


def seam_split(f, vt, ft, n_verts):
    """Split FLAME's ``n_verts`` vertices where the UV layout has seams: f (F,3) vertex ids,
    vt (T,2), ft (F,3) UV ids -> (source (V',) the FLAME vertex of each output vertex, uv_id (V',) its
    UV id (-1 for a vertex in no face), faces (F,3) in output ids).

    Output vertex i < V is FLAME vertex i, with the UV of its first face corner (in face
    order); each other (vertex, UV) pair the faces use becomes one more vertex, appended in
    the order of its first corner.
    """
    f, ft = np.asarray(f, dtype=np.int64), np.asarray(ft, dtype=np.int64)
    corner_v, corner_t = f.ravel(), ft.ravel()
    used, first = np.unique(corner_v, return_index=True)
    uv_id = np.full(n_verts, -1, dtype=np.int64)
    uv_id[used] = corner_t[first]
    extra = corner_t != uv_id[corner_v]
    keys = corner_v[extra] * len(vt) + corner_t[extra]
    pairs, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(pairs), dtype=np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(pairs))
    pairs = pairs[np.argsort(first, kind='stable')]
    corners = corner_v.copy()
    corners[extra] = n_verts + rank[inverse.reshape(-1)]
    return (np.concatenate([np.arange(n_verts), pairs // len(vt)]),
            np.concatenate([uv_id, pairs % len(vt)]), corners.reshape(f.shape))


def top_influences(weights, k=MAX_INFLUENCES):
    """(V,J) skinning weights -> (joints (V,k) uint8, weights (V,k) float32): each vertex's
    k largest weights, largest first, renormalised to sum to 1 (as float32, within one ulp);
    an unused slot has weight 0 and joint 0. Raises ValueError for a vertex without weight."""
    weights = np.asarray(weights, dtype=np.float64)
    k = min(k, weights.shape[1])
    order = np.argsort(-weights, axis=1, kind='stable')[:, :k]
    kept = np.take_along_axis(weights, order, axis=1)
    total = kept.sum(axis=1, keepdims=True)
    if not (total > 0).all():
        raise ValueError('FLAME skinning weights: vertex %d has no positive weight'
                         % np.flatnonzero(~(total[:, 0] > 0))[0])
    out = (kept / total).astype(np.float32)
    # the float32 rounding left over goes to the largest weight (validators check the sum)
    out[:, 0] += (1.0 - out.astype(np.float64).sum(axis=1)).astype(np.float32)
    order[out == 0] = 0
    return order.astype(np.uint8), out


def quaternions(axis_angle):
    """(N,3) axis-angle -> (N,4) unit quaternions (x, y, z, w), glTF's order, float64."""
    axis_angle = np.asarray(axis_angle, dtype=np.float64).reshape(-1, 3)
    half = 0.5 * np.linalg.norm(axis_angle, axis=1, keepdims=True)
    # sin(half) / (2 half) written with sinc: exact at zero
    xyz = axis_angle * 0.5 * np.sinc(half / np.pi)
    return np.concatenate([xyz, np.cos(half)], axis=1)


def continuous(quats):
    """(K,4) quaternions with signs chosen so consecutive ones are on the same side (dot >= 0):
    the same rotations, and interpolation between keyframes takes the short way."""
    quats = np.asarray(quats, dtype=np.float64)
    dots = np.einsum('ij,ij->i', quats[1:], quats[:-1])
    signs = np.cumprod(np.concatenate([[1.0], np.where(dots < 0, -1.0, 1.0)]))
    return quats * signs[:, None]


def hold_last(values, found):
    """(K,...) rows, (K,) bool -> the rows with each missing one replaced by the last found
    row before it (the first found row before the first one). Raises ValueError if none."""
    found = np.asarray(found, dtype=bool)
    if not found.any():
        raise ValueError('the track was never found')
    index = np.where(found, np.arange(len(found)), 0)
    np.maximum.accumulate(index, out=index)
    index[:np.argmax(found)] = np.argmax(found)
    return np.asarray(values)[index]


def track_animation(arrays):
    """A track's arrays (docs/formats.md §14: time_s, found, pose, shape, expression) -> (shape
    (S,) the median over the found rows, as neutral_mesh/NAME.obj, Animation of every row,
    a missing row holding the last pose)."""
    found = np.asarray(arrays['found'], dtype=bool)
    animation = Animation(np.asarray(arrays['time_s'], dtype=np.float64),
                          hold_last(np.asarray(arrays['pose'], dtype=np.float64), found),
                          hold_last(np.asarray(arrays['expression'], dtype=np.float64), found))
    return median_rows(arrays['shape'], found), animation


def head_glb(flame, shape, expression, pose, texture=None, animation=None):
    """The GLB bytes of one head.

    flame: smpl_webuser FlameModel; shape (S,), expression (E,), pose (6,) global and jaw
    axis-angle (RingNet's, docs/formats.md §2); texture: GlbTexture or None; animation:
    Animation or None (the static pose is then its first row's).
    """
    expression = np.asarray(expression, dtype=np.float64).reshape(-1)
    base = neutral_vertices(flame, shape, N_SHAPE)                        # (V,3)
    basis = expression_basis(flame, len(expression))                      # (E,V,3)
    joints = rest_joints(flame, base)                                     # (J,3)
    faces = np.asarray(flame.f, dtype=np.int64)
    if texture is None:
        source, uv_id = np.arange(len(base)), None
    else:
        source, uv_id, faces = seam_split(faces, texture.vt, texture.ft, len(base))
    buf = BinaryBuffer()
    attributes = _vertex_attributes(buf, flame, base, source, faces, uv_id, texture)
    targets = [{'POSITION': buf.accessor(offsets[source].astype(np.float32),
                                         ARRAY_BUFFER, bounds=True)} for offsets in basis]
    index_type = np.uint16 if len(source) <= 65535 else np.uint32
    indices = buf.accessor(faces.reshape(-1).astype(index_type), ELEMENT_ARRAY_BUFFER)
    rotations = quaternions(full_pose(pose, len(joints)).reshape(-1, 3))  # (J,4)
    primitive = {'attributes': attributes, 'indices': indices, 'material': 0, 'mode': 4}
    mesh = {'name': 'FLAME', 'primitives': [primitive],
            'extras': {'targetNames': [target_name(k) for k in range(len(expression))],
                       'flameVertexCount': len(base),
                       'seamVertexSources': [int(i) for i in source[len(base):]]}}
    if targets:  # glTF allows no empty list of targets
        primitive['targets'] = targets
        mesh['weights'] = [float(w) for w in expression]
    document = {
        'asset': {'version': '2.0', 'generator': GENERATOR},
        'scene': 0,
        'meshes': [mesh],
        'materials': [_material(texture)],
    }
    document.update(_skeleton(buf, flame.parents, joints, rotations))
    if texture is not None:
        document.update(_texture(buf, texture.png))
    if animation is not None:
        document['animations'] = [_animation(buf, animation, len(expression), len(joints))]
    document.update(buf.json_parts())
    return glb_bytes(document, buf.bytes())


def _vertex_attributes(buf, flame, base, source, faces, uv_id, texture):
    """POSITION, NORMAL, JOINTS_0, WEIGHTS_0 (and TEXCOORD_0) accessors of the output
    vertices (``source``: their FLAME vertices) -> the primitive's attributes."""
    normals = vertex_normals(base, flame.f)[source]
    normals[~(np.abs(normals).sum(axis=1) > 0)] = (0.0, 0.0, 1.0)  # a vertex in no face
    skin_joints, skin_weights = top_influences(flame.weights)
    attributes = {
        'POSITION': buf.accessor(base[source].astype(np.float32), ARRAY_BUFFER, bounds=True),
        'NORMAL': buf.accessor(normals.astype(np.float32), ARRAY_BUFFER),
        'JOINTS_0': buf.accessor(skin_joints[source], ARRAY_BUFFER),
        'WEIGHTS_0': buf.accessor(skin_weights[source], ARRAY_BUFFER)}
    if texture is not None:
        uv = np.zeros((len(source), 2))
        has_uv = uv_id >= 0
        vt = np.asarray(texture.vt, dtype=np.float64)[uv_id[has_uv]]
        uv[has_uv] = np.stack([vt[:, 0], 1.0 - vt[:, 1]], axis=1)  # glTF's v runs down
        attributes['TEXCOORD_0'] = buf.accessor(uv.astype(np.float32), ARRAY_BUFFER)
    return attributes


def _skeleton(buf, parents, joints, rotations):
    """Nodes (0: the skinned mesh, 1 + j: joint j) and the skin: each joint at its rest
    position relative to its parent, rotated by its pose; inverse bind matrices move each
    vertex to its joint's frame (the joints carry no rotation at rest)."""
    n_joints = len(joints)
    names = JOINT_NAMES if n_joints == len(JOINT_NAMES) else \
        tuple('joint%d' % j for j in range(n_joints))
    nodes = [{'name': 'FLAME', 'mesh': 0, 'skin': 0}]
    for j, parent in enumerate(parents):
        offset = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        node = {'name': names[j], 'translation': [float(x) for x in offset]}
        if not np.array_equal(rotations[j], [0.0, 0.0, 0.0, 1.0]):
            node['rotation'] = [float(x) for x in rotations[j]]
        children = [1 + c for c in range(n_joints) if parents[c] == j]
        if children:
            node['children'] = children
        nodes.append(node)
    roots = [1 + j for j in range(n_joints) if parents[j] < 0]
    inverse_bind = np.tile(np.eye(4), (n_joints, 1, 1))
    inverse_bind[:, :3, 3] = -joints
    skin = {'name': 'FLAME joints', 'joints': list(range(1, n_joints + 1)),
            'skeleton': roots[0],
            'inverseBindMatrices': buf.accessor(inverse_bind.astype(np.float32))}
    return {'scenes': [{'nodes': [0] + roots}], 'nodes': nodes, 'skins': [skin]}


def _material(texture):
    """A matte material (the MTL's Kd 1, Ks 0), with the texture as base colour if any."""
    pbr = {'metallicFactor': 0.0, 'roughnessFactor': 1.0}
    if texture is None:
        pbr['baseColorFactor'] = [0.8, 0.8, 0.8, 1.0]
    else:
        pbr['baseColorTexture'] = {'index': 0, 'texCoord': 0}
    return {'name': 'skin', 'pbrMetallicRoughness': pbr}


def _texture(buf, png):
    """The PNG, stored as it is in the buffer, as texture 0."""
    return {'images': [{'bufferView': buf.view(png), 'mimeType': 'image/png'}],
            'samplers': [{'magFilter': LINEAR, 'minFilter': LINEAR,
                          'wrapS': CLAMP_TO_EDGE, 'wrapT': CLAMP_TO_EDGE}],
            'textures': [{'sampler': 0, 'source': 0}]}


def _animation(buf, animation, n_expression, n_joints):
    """The keyframes as one animation: the morph weights of the mesh node and the rotations
    of the posed joints (global, jaw), linearly interpolated (spherically for rotations)."""
    times = np.asarray(animation.time_s, dtype=np.float64).astype(np.float32)
    expression = np.asarray(animation.expression, dtype=np.float64)
    if len(times) == 0 or (np.diff(times) <= 0).any() or times[0] < 0:
        raise ValueError('animation times must be non-negative and increasing (as float32)')
    if expression.shape != (len(times), n_expression):
        raise ValueError('animation expression must be (%d, %d), got %s'
                         % (len(times), n_expression, expression.shape))
    rotations = quaternions(full_pose(animation.pose, n_joints).reshape(-1, 3))
    rotations = rotations.reshape(len(times), n_joints, 4)
    time_input = buf.accessor(times, bounds=True)
    samplers, channels = [], []
    if n_expression:
        samplers.append({'input': time_input, 'interpolation': 'LINEAR',
                         'output': buf.accessor(expression.astype(np.float32).reshape(-1))})
        channels.append({'sampler': 0, 'target': {'node': 0, 'path': 'weights'}})
    for j in POSED_JOINTS:
        samplers.append({'input': time_input, 'interpolation': 'LINEAR',
                         'output': buf.accessor(continuous(rotations[:, j]).astype(np.float32))})
        channels.append({'sampler': len(samplers) - 1,
                         'target': {'node': 1 + j, 'path': 'rotation'}})
    return {'name': 'track', 'samplers': samplers, 'channels': channels}


def glb_outputs(name, params, context, texture_png=None):
    """{glb/NAME.glb: bytes} of a photo's frame; params: its theta split (shape, expression,
    pose); texture_png: the bytes of texture/NAME.png with --save_texture, else None."""
    texture = None
    if texture_png is not None:
        data = context.texture_data
        texture = GlbTexture(texture_png, data['vt'], data['ft'])
    return {output_path(name, 'glb'): head_glb(context.flame, params['shape'],
                                               params['expression'], params['pose'], texture)}


def track_glb_outputs(name, arrays, context):
    """{glb/NAME.glb: bytes} of a video track (its arrays as params/NAME.npz holds them)."""
    shape, animation = track_animation(arrays)
    return {clip_output_path(name, 'glb'): head_glb(
        context.flame, shape, animation.expression[0], animation.pose[0],
        animation=animation)}
