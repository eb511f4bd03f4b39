"""``python -m demo --save_glb`` end to end on the --demo model: a photo, the faces of a
two-face picture (--detect_faces) and a video track each get glb/NAME.glb, which the Khronos
glTF Validator accepts and which, skinned by tests/gltf_reader.py, shows the run's own
mesh/NAME.obj (meshes read back with trimesh)."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import trimesh

from gltf_reader import evaluate, parse_glb, read_accessor, validator_reports
from test_detect import _paste_head, _smooth_noise
from test_video import write_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
N_FRAMES = 4
# the GLB against FLAME in full: no pose correctives in a glTF rig (docs/formats.md §16)
RIG_TOL = 1e-3  # metres
FLAGS = ['--save_glb', '--save_texture', '--save_obj_file', '--neutralize_expression',
         '--save_flame_parameters']


def demo(args, cache):
    """``python -m demo --demo ARGS`` started (Popen, output captured)."""
    env = dict(os.environ, RINGNET_CACHE_DIR=cache)
    return subprocess.Popen([sys.executable, '-m', 'demo', '--demo'] + [str(a) for a in args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Both runs, started together once the demo files exist: {'photo_and_clip': (input
    folder, out), 'two_faces': out}.

    photo_and_clip: a photo and a 4-frame clip in one folder, whole-image crops; two_faces: a
    picture with two faces, --detect_faces."""
    from synthetic.demo_assets import ensure_demo_assets
    cache = str(tmp_path_factory.mktemp('cache'))
    ensure_demo_assets(cache)
    folder = tmp_path_factory.mktemp('inputs')
    shutil.copy(IMAGE, str(folder / 'photo.jpg'))
    write_clip(folder / 'clip.avi', n_frames=N_FRAMES)
    scene = _smooth_noise(400, 640, 1)
    _paste_head(scene, 150, 60, 120, False)
    _paste_head(scene, 150, 400, 100, True)
    group = tmp_path_factory.mktemp('scene') / 'group.png'
    cv2.imwrite(str(group), scene[..., ::-1])
    out, out_faces = tmp_path_factory.mktemp('out'), tmp_path_factory.mktemp('out_faces')
    procs = [demo(['--img_path', folder, '--out_folder', out] + FLAGS, cache),
             demo(['--img_path', group, '--out_folder', out_faces, '--detect_faces'] + FLAGS,
                  cache)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    return {'photo_and_clip': (folder, out), 'two_faces': out_faces}


@pytest.fixture(scope='module')
def photo_and_clip(runs):
    return runs['photo_and_clip']


@pytest.fixture(scope='module')
def two_faces(runs):
    return runs['two_faces']


def read(out, rel):
    with open(os.path.join(str(out), rel), 'rb') as fh:
        return fh.read()


def obj_vertices(path):
    return np.asarray(trimesh.load(str(path), process=False).vertices)


def check_photo_glb(out, name):
    """glb/NAME.glb of a photo's frame against the run's own OBJ, neutral OBJ and texture."""
    doc, binary = parse_glb(read(out, 'glb/%s.glb' % name))
    neutral = obj_vertices(os.path.join(str(out), 'neutral_mesh', name + '.obj'))
    mesh = obj_vertices(os.path.join(str(out), 'mesh', name + '.obj'))
    attr = doc['meshes'][0]['primitives'][0]['attributes']
    base = read_accessor(doc, binary, attr['POSITION'])
    np.testing.assert_allclose(base[:len(neutral)], neutral, rtol=0, atol=1e-6)
    np.testing.assert_allclose(evaluate(doc, binary)[:len(mesh)], mesh, rtol=0, atol=RIG_TOL)
    view = doc['bufferViews'][doc['images'][0]['bufferView']]
    embedded = binary[view['byteOffset']:view['byteOffset'] + view['byteLength']]
    assert embedded == read(out, 'texture/%s.png' % name)
    params = json.loads(read(out, 'params/%s.json' % name))
    np.testing.assert_allclose(doc['meshes'][0]['weights'], params['expression'], rtol=1e-6)


def test_photo_glb_shows_its_mesh_with_its_texture(photo_and_clip):
    check_photo_glb(photo_and_clip[1], 'photo')


def test_each_detected_face_gets_its_own_glb(two_faces):
    assert sorted(os.listdir(str(two_faces / 'glb'))) == ['group_face0.glb', 'group_face1.glb']
    for k in range(2):
        check_photo_glb(two_faces, 'group_face%d' % k)


def test_video_track_glb_plays_the_track(photo_and_clip):
    _, out = photo_and_clip
    doc, binary = parse_glb(read(out, 'glb/clip.glb'))
    track = np.load(str(out / 'params' / 'clip.npz'))
    (animation,) = doc['animations']
    sampler = {c['target']['path'] + str(c['target']['node']): animation['samplers'][c['sampler']]
               for c in animation['channels']}
    times = read_accessor(doc, binary, sampler['weights0']['input'])
    np.testing.assert_array_equal(times, track['time_s'].astype(np.float32))
    weights = read_accessor(doc, binary, sampler['weights0']['output']).reshape(len(times), -1)
    rotations = {node: read_accessor(doc, binary, sampler['rotation%d' % node]['output'])
                 for node in (1, 3)}
    neutral = obj_vertices(out / 'neutral_mesh' / 'clip.obj')
    base = read_accessor(doc, binary, doc['meshes'][0]['primitives'][0]['attributes']['POSITION'])
    np.testing.assert_allclose(base, neutral, rtol=0, atol=1e-6)
    assert track['found'].all() and len(times) == N_FRAMES
    for row, frame in enumerate(track['frame']):
        mesh = obj_vertices(out / 'mesh' / 'clip' / ('%06d.obj' % frame))
        got = evaluate(doc, binary, weights[row], {n: rotations[n][row] for n in (1, 3)})
        np.testing.assert_allclose(got, mesh, rtol=0, atol=RIG_TOL)


def test_glbs_validate_and_are_in_the_manifest(photo_and_clip, two_faces):
    _, out = photo_and_clip
    paths = [str(out / 'glb' / 'photo.glb'), str(out / 'glb' / 'clip.glb'),
             str(two_faces / 'glb' / 'group_face0.glb')]
    for path, report in validator_reports(paths).items():
        assert report['issues']['numErrors'] == 0, (path, report['issues']['messages'])
        assert report['issues']['numWarnings'] == 0, (path, report['issues']['messages'])
    listed = [row['outputs'] for row in map(json.loads, read(out, 'manifest.jsonl').splitlines())]
    assert sorted(p for outputs in listed for p in outputs if p.startswith('glb/')) == \
        ['glb/clip.glb', 'glb/photo.glb']


def test_skip_existing_needs_the_glb(photo_and_clip):
    """--skip_existing counts glb/NAME.glb among a photo's and a track's outputs."""
    from config import default_config
    from util.pipeline.manifest import read_manifest
    from util.pipeline.resume import finished_outputs
    folder, out = photo_and_clip
    config = default_config(save_glb=True, save_texture=True, save_obj_file=True,
                            neutralize_expression=True, save_flame_parameters=True)
    previous = read_manifest(str(out))
    for name in ('photo', 'clip'):
        entry = [p for p in previous if os.path.basename(p).startswith(name + '.')][0]
        found = finished_outputs(str(out), name, config, previous[entry])
        assert found is not None and os.path.join('glb', name + '.glb') in found[0]
        os.rename(str(out / 'glb' / (name + '.glb')), str(out / 'glb' / 'moved'))
        try:
            assert finished_outputs(str(out), name, config, previous[entry]) is None
        finally:
            os.rename(str(out / 'glb' / 'moved'), str(out / 'glb' / (name + '.glb')))
