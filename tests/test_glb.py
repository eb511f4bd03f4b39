"""The rigged GLB head (util/outputs/glb.py, docs/formats.md §16), read back by independent
means: the Khronos glTF Validator (node, tests/gltf), trimesh, and the tests' own GLB parser
and linear blend skinning (tests/gltf_reader.py), compared with the naive FLAME of
tests/flame_reference.py."""
import io

import cv2
import numpy as np
import pytest

from flame_reference import flame_betas, full_pose, naive_flame
from gltf_reader import evaluate, parse_glb, quat_matrix, read_accessor, validator_reports
from smpl_webuser.serialization import load_model
from util.io.image_io import encode_image
from util.outputs.glb import Animation, GlbTexture, head_glb, track_animation
from util.render.texture_data import load_texture_data

N_EXPR = 50
ATOL = 2e-6  # metres: float32 positions (~0.2 m) through morphs and skinning


@pytest.fixture(scope='module')
def flame(flame_assets):
    return load_model(flame_assets['flame_model'])


@pytest.fixture(scope='module')
def texture_data(flame_assets, flame):
    return load_texture_data(flame_assets['texture_data'], len(flame.v_template), len(flame.f))


@pytest.fixture(scope='module')
def params():
    rng = np.random.default_rng(7)
    # RingNet's global rotation carries the camera's flip: about pi around x
    pose = np.array([np.pi - 0.2, 0.15, -0.1, 0.25, 0.05, -0.03])
    return rng.normal(size=100), rng.normal(size=N_EXPR), pose


@pytest.fixture(scope='module')
def png():
    rng = np.random.default_rng(3)
    return encode_image(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))


@pytest.fixture(scope='module')
def track():
    """A track as params/NAME.npz holds it: 6 rows, not found in rows 0, 3 and 4 (NaN), the
    global rotation crossing the sign flip of its axis-angle near pi."""
    rng = np.random.default_rng(11)
    n = 6
    found = np.array([False, True, True, False, False, True])
    pose = np.zeros((n, 6))
    pose[:, 0] = [0.0, np.pi - 0.05, np.pi - 0.02, 0.0, 0.0, -(np.pi - 0.03)]
    pose[:, 3] = [0.0, 0.1, 0.3, 0.0, 0.0, 0.2]
    arrays = {'time_s': 0.5 + np.arange(n) / 25.0, 'found': found,
              'pose': pose.astype(np.float32),
              'shape': rng.normal(size=(n, 100)).astype(np.float32),
              'expression': rng.normal(size=(n, N_EXPR)).astype(np.float32)}
    for key in ('pose', 'shape', 'expression'):
        arrays[key][~found] = np.nan
    return arrays


@pytest.fixture(scope='module')
def glbs(flame, texture_data, params, png, track):
    shape, expression, pose = params
    texture = GlbTexture(png, texture_data['vt'], texture_data['ft'])
    track_shape, animation = track_animation(track)
    return {'static': head_glb(flame, shape, expression, pose),
            'textured': head_glb(flame, shape, expression, pose, texture),
            'animated': head_glb(flame, track_shape, animation.expression[0],
                                 animation.pose[0], animation=animation)}


def model_arrays(flame, top4=False, correctives=True):
    """The FLAME arrays for naive_flame; top4: keep each vertex's 4 largest skinning weights,
    renormalised; correctives=False: no pose blendshapes (what the GLB approximates)."""
    weights = flame.weights
    if top4:
        smallest = np.argmin(weights, axis=1)
        weights = weights.copy()
        weights[np.arange(len(weights)), smallest] = 0.0
        weights /= weights.sum(axis=1, keepdims=True)
    return {'v_template': flame.v_template, 'shapedirs': flame.shapedirs,
            'posedirs': flame.posedirs if correctives else np.zeros_like(flame.posedirs),
            'J_regressor': flame.J_regressor, 'weights': weights}


def rig_reference(flame, shape, expression, pose):
    """Naive FLAME as the GLB rig approximates it: 4 weights, no pose correctives, joints
    regressed from the shape alone."""
    betas = flame_betas(shape, expression)
    return naive_flame(model_arrays(flame, top4=True, correctives=False), betas,
                       full_pose(pose), np.zeros(3), joint_betas=flame_betas(shape, 0 * expression))[0]


def flame_vertex_of(doc):
    """(V',) the FLAME vertex of each GLB vertex: its own index for the first V, then the
    mesh's extras.seamVertexSources."""
    extras = doc['meshes'][0]['extras']
    return np.concatenate([np.arange(extras['flameVertexCount']),
                           np.asarray(extras['seamVertexSources'], dtype=np.int64)])


def neutral(flame, shape):
    return flame.v_template + np.tensordot(flame.shapedirs[:, :, :len(shape)], shape, 1)


# --- tests -----------------------------------------------------------------------------

def test_khronos_validator_reports_no_error(glbs, tmp_path):
    files = []
    for name, data in glbs.items():
        files.append(str(tmp_path / (name + '.glb')))
        with open(files[-1], 'wb') as fh:
            fh.write(data)
    reports = validator_reports(files)
    for path in files:
        issues = reports[path]['issues']
        assert issues['numErrors'] == 0, issues['messages']
        assert issues['numWarnings'] == 0, issues['messages']
        info = reports[path]['info']
        assert info['hasSkins'] and info['hasMorphTargets'] and info['maxInfluences'] == 4
    assert reports[files[1]]['info']['hasTextures']
    assert reports[files[2]]['info']['animationCount'] == 1


def test_trimesh_reads_the_neutral_vertices(glbs, flame, params):
    trimesh = pytest.importorskip('trimesh')
    expected = neutral(flame, params[0])
    for name in ('static', 'textured'):
        scene = trimesh.load(io.BytesIO(glbs[name]), file_type='glb', process=False)
        (mesh,) = scene.geometry.values()
        v = np.asarray(mesh.vertices)
        np.testing.assert_allclose(v[:len(expected)], expected, rtol=0, atol=1e-6)
        # the faces, in FLAME's order, name the same FLAME vertices (seam copies mapped back)
        doc, _ = parse_glb(glbs[name])
        source = flame_vertex_of(doc)
        np.testing.assert_array_equal(source[np.asarray(mesh.faces)], flame.f)
        np.testing.assert_allclose(v, expected[source], rtol=0, atol=1e-6)


def test_file_as_loaded_is_the_rig_of_the_predicted_face(glbs, flame, params):
    shape, expression, pose = params
    expected = rig_reference(flame, shape, expression, pose)
    for name in ('static', 'textured'):
        doc, binary = parse_glb(glbs[name])
        assert doc['meshes'][0]['extras']['targetNames'] == ['exp%02d' % k for k in range(50)]
        np.testing.assert_allclose(doc['meshes'][0]['weights'], expression.astype(np.float64))
        names = [doc['nodes'][j]['name'] for j in doc['skins'][0]['joints']]
        assert names == ['global', 'neck', 'jaw', 'eye_left', 'eye_right']
        source = flame_vertex_of(doc)
        np.testing.assert_allclose(evaluate(doc, binary), expected[source], rtol=0, atol=ATOL)


def test_full_flame_differs_only_by_the_documented_approximation(glbs, flame, params):
    """Against FLAME with pose correctives and every weight (mesh/NAME.obj): millimetres at a
    jaw opening of 0.25 rad on the synthetic model; and exact without jaw rotation when the
    expression is zero (the joints then sit where FLAME regresses them)."""
    shape, expression, pose = params
    doc, binary = parse_glb(glbs['static'])
    full = naive_flame(model_arrays(flame), flame_betas(shape, expression), full_pose(pose),
                       np.zeros(3))[0]
    error = np.linalg.norm(evaluate(doc, binary) - full, axis=1)
    assert 1e-5 < error.max() < 2e-3
    global_only = np.r_[pose[:3], 0, 0, 0]
    weights = np.zeros(N_EXPR)
    rotations = {1: doc['nodes'][1]['rotation'], 3: [0, 0, 0, 1]}
    full = naive_flame(model_arrays(flame), flame_betas(shape, weights),
                       full_pose(global_only), np.zeros(3))[0]
    np.testing.assert_allclose(evaluate(doc, binary, weights, rotations), full, rtol=0,
                               atol=ATOL)


def test_morph_targets_are_flame_expression_components(glbs, flame, params):
    shape = params[0]
    doc, binary = parse_glb(glbs['static'])
    targets = doc['meshes'][0]['primitives'][0]['targets']
    arrays = model_arrays(flame)
    rest = naive_flame(arrays, flame_betas(shape, np.zeros(N_EXPR)), np.zeros(15), np.zeros(3))[0]
    for k in (0, 17, 49):
        unit = np.zeros(N_EXPR)
        unit[k] = 1.0
        moved = naive_flame(arrays, flame_betas(shape, unit), np.zeros(15), np.zeros(3))[0]
        np.testing.assert_allclose(read_accessor(doc, binary, targets[k]['POSITION']),
                                   moved - rest, rtol=0, atol=1e-7)
    # all of them together: the rest pose with some expression
    expression = np.random.default_rng(2).normal(size=N_EXPR)
    expected = naive_flame(arrays, flame_betas(shape, expression), np.zeros(15), np.zeros(3))[0]
    unposed = {1 + j: [0, 0, 0, 1] for j in range(5)}
    np.testing.assert_allclose(evaluate(doc, binary, expression, unposed), expected, rtol=0,
                               atol=ATOL)


def test_skin_weights_are_the_four_largest_renormalised(glbs, flame, params):
    doc, binary = parse_glb(glbs['static'])
    attr = doc['meshes'][0]['primitives'][0]['attributes']
    joints = read_accessor(doc, binary, attr['JOINTS_0']).astype(np.int64)
    weights = read_accessor(doc, binary, attr['WEIGHTS_0']).astype(np.float64)
    dense = np.zeros_like(flame.weights)
    np.add.at(dense, (np.arange(len(dense))[:, None], joints), weights)
    np.testing.assert_allclose(dense, model_arrays(flame, top4=True)['weights'], atol=1e-7)
    # the joints sit where FLAME's regressor puts them on the neutral mesh
    inverse_bind = read_accessor(doc, binary, doc['skins'][0]['inverseBindMatrices'])
    np.testing.assert_allclose(-inverse_bind[:, :3, 3],
                               flame.J_regressor.toarray() @ neutral(flame, params[0]),
                               rtol=0, atol=1e-7)
    np.testing.assert_array_equal(inverse_bind[:, :3, :3], np.tile(np.eye(3), (5, 1, 1)))


def test_texture_is_embedded_and_mapped_like_the_obj(glbs, flame, params, png, texture_data):
    doc, binary = parse_glb(glbs['textured'])
    image = doc['images'][doc['textures'][doc['materials'][0]['pbrMetallicRoughness']
                                          ['baseColorTexture']['index']]['source']]
    view = doc['bufferViews'][image['bufferView']]
    assert image['mimeType'] == 'image/png'
    assert binary[view['byteOffset']:view['byteOffset'] + view['byteLength']] == png
    prim = doc['meshes'][0]['primitives'][0]
    uv = read_accessor(doc, binary, prim['attributes']['TEXCOORD_0']).astype(np.float64)
    corners = read_accessor(doc, binary, prim['indices']).reshape(-1, 3)
    vt, ft = texture_data['vt'], texture_data['ft']
    # each face corner has the OBJ's UV with v flipped (glTF's origin is the top left)
    np.testing.assert_allclose(uv[corners], np.stack([vt[ft][..., 0], 1 - vt[ft][..., 1]], -1),
                               rtol=0, atol=1e-7)
    # and a texel's centre, interpolated over its face, lands on that texel of the image
    face_of = {tuple(row): i for i, row in enumerate(flame.f.tolist())}
    faces = np.array([face_of[tuple(row)] for row in texture_data['valid_pixel_3d_faces'].tolist()])
    texel_uv = np.einsum('nk,nkc->nc', texture_data['valid_pixel_b_coords'], uv[corners[faces]])
    ids = texture_data['valid_pixel_ids']
    size = texture_data['img_size']
    np.testing.assert_allclose(texel_uv * size - 0.5,
                               np.stack([texture_data['x_coords'][ids],
                                         texture_data['y_coords'][ids]], 1), atol=1e-3)


def test_animation_plays_the_track_holding_missing_frames(glbs, flame, track):
    doc, binary = parse_glb(glbs['animated'])
    (animation,) = doc['animations']
    samplers = animation['samplers']
    by_target = {(c['target']['node'], c['target']['path']): samplers[c['sampler']]
                 for c in animation['channels']}
    assert set(by_target) == {(0, 'weights'), (1, 'rotation'), (3, 'rotation')}
    times = read_accessor(doc, binary, samplers[0]['input'])
    np.testing.assert_array_equal(times, track['time_s'].astype(np.float32))
    weights = read_accessor(doc, binary, by_target[0, 'weights']['output']).reshape(6, N_EXPR)
    rotations = {node: read_accessor(doc, binary, by_target[node, 'rotation']['output'])
                 for node in (1, 3)}
    # short-way interpolation: consecutive keys on the same side of the quaternion sphere
    for q in rotations.values():
        assert (np.einsum('ij,ij->i', q[1:], q[:-1]) >= 0).all()
    found = track['found']
    shape = np.median(track['shape'][found].astype(np.float64), axis=0)
    held = [1, 1, 2, 2, 2, 5]  # rows 0, 3, 4 missing: the first found, then the last one
    for row, source in enumerate(held):
        pose = track['pose'][source].astype(np.float64)
        for node, axis_angle in ((1, pose[:3]), (3, pose[3:])):  # global, jaw
            np.testing.assert_allclose(quat_matrix(rotations[node][row].astype(np.float64)),
                                       cv2.Rodrigues(axis_angle)[0], atol=1e-6)
        np.testing.assert_allclose(weights[row], track['expression'][source])
    for row in (0, 4, 5):
        source = held[row]
        expected = rig_reference(flame, shape, track['expression'][source].astype(np.float64),
                                 track['pose'][source].astype(np.float64))
        got = evaluate(doc, binary, weights[row], {n: rotations[n][row] for n in (1, 3)})
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    # as loaded (no animation played), the file shows the first row
    np.testing.assert_allclose(evaluate(doc, binary), evaluate(doc, binary, weights[0],
                               {n: rotations[n][0] for n in (1, 3)}), rtol=0, atol=1e-6)


def test_bad_tracks_and_times_are_refused(flame, params):
    shape, expression, pose = params
    times = np.array([0.0, 0.1, 0.1])
    with pytest.raises(ValueError, match='increasing'):
        head_glb(flame, shape, expression, pose,
                 animation=Animation(times, np.zeros((3, 6)), np.zeros((3, N_EXPR))))
    with pytest.raises(ValueError, match='never found'):
        track_animation({'time_s': np.zeros(2), 'found': np.zeros(2, bool),
                         'pose': np.zeros((2, 6)), 'shape': np.zeros((2, 100)),
                         'expression': np.zeros((2, N_EXPR))})
    with pytest.raises(ValueError, match='6 values'):
        head_glb(flame, shape, expression, np.zeros(9))
