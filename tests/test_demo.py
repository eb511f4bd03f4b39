"""End to end: ``python -m demo`` as a user runs it, outputs read back with independent parsers."""
import os
import pickle
import subprocess
import sys

import chumpy  # a test requirement: unpickles the FLAME model's Ch arrays
import cv2
import numpy as np
import pytest
import trimesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
ALL_OUTPUTS = ['--save_obj_file=True', '--save_flame_parameters=True',
               '--neutralize_expression=True', '--save_texture=True']


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('ringnet_cache'))


def run_demo(args, cache_dir, cwd=ROOT):
    env = dict(os.environ, RINGNET_CACHE_DIR=cache_dir)
    return subprocess.run([sys.executable, '-m', 'demo'] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def demo_run(cache_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('out'))
    proc = run_demo(['--demo', '--img_path', IMAGE, '--out_folder', out] + ALL_OUTPUTS, cache_dir)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def reference_prediction(cache_dir):
    """The network's output for the sample image, computed here without the pipeline."""
    from config import default_config
    from util.model.tf_backend import RingNet_inference
    from synthetic.demo_assets import ensure_demo_assets
    from util.io.image_io import load_image
    from util.face.preprocess import preprocess_image
    files = ensure_demo_assets(cache_dir)
    net = RingNet_inference(default_config(load_path=files['load_path']))
    crop, _ = preprocess_image(load_image(IMAGE), 224)
    verts, theta = net.predict(crop[None], get_parameters=True)
    return files, verts[0], theta[0]


def chumpy_neutral(flame_model_path, params_path):
    """Expected neutral template, independent of the product: the FLAME pickle read with plain
    pickle + real chumpy, the shape read from the saved params with np.load.
    -> (v_template + shapedirs[:, :, :100] . shape, FLAME faces)."""
    with open(flame_model_path, 'rb') as fh:
        flame = pickle.load(fh, encoding='latin1')
    assert isinstance(flame['shapedirs'], chumpy.Ch)  # really read through chumpy
    shape = np.load(params_path, allow_pickle=True)[()]['shape']
    assert shape.shape == (100,)
    shapedirs = np.asarray(flame['shapedirs'])
    expected = np.asarray(flame['v_template']) + shapedirs[:, :, :100].dot(shape)
    return expected, np.asarray(flame['f'])


def test_demo_writes_all_seven_files(demo_run):
    out, proc = demo_run
    # the original's seven, plus this port's JSON sidecar, run manifest and report (whose
    # report/ folder tests/test_report.py checks)
    expected = ['images/000001.png', 'mesh/000001.obj', 'params/000001.npy',
                'neutral_mesh/000001.obj', 'texture/000001.png', 'texture/000001.obj',
                'texture/000001.mtl', 'params/000001.json', 'manifest.jsonl', 'report.html',
                'run.json']
    found = sorted(os.path.relpath(os.path.join(d, f), out)
                   for d, _, fs in os.walk(out) for f in fs)
    assert [f for f in found if not f.startswith('report' + os.sep)] == sorted(expected)
    assert proc.stderr.count('SYNTHETIC') == 1  # the demo notice, said once


def test_demo_outputs_read_back_independently(demo_run, cache_dir):
    out, _ = demo_run
    files, verts, theta = reference_prediction(cache_dir)

    mesh = trimesh.load(os.path.join(out, 'mesh/000001.obj'), process=False)
    np.testing.assert_allclose(mesh.vertices, verts, atol=1e-6)  # same count, same order

    params = np.load(os.path.join(out, 'params/000001.npy'), allow_pickle=True)[()]
    assert {k: v.shape for k, v in params.items()} == {
        'cam': (3,), 'pose': (6,), 'shape': (100,), 'expression': (50,)}
    np.testing.assert_allclose(np.concatenate([params[k] for k in ('cam', 'pose', 'shape',
                                                                    'expression')]), theta)

    # neutral template from the FLAME pickle read with plain pickle + real chumpy
    expected, flame_faces = chumpy_neutral(files['flame_model_path'],
                                           os.path.join(out, 'params/000001.npy'))
    neutral = trimesh.load(os.path.join(out, 'neutral_mesh/000001.obj'), process=False)
    np.testing.assert_allclose(neutral.vertices, expected, atol=1e-6)
    np.testing.assert_array_equal(neutral.faces, flame_faces)

    img = cv2.imread(IMAGE)
    panel = cv2.imread(os.path.join(out, 'images/000001.png'))
    assert panel.shape == (img.shape[0], 4 * img.shape[1], 3)
    texture = cv2.imread(os.path.join(out, 'texture/000001.png'))
    assert texture.shape == (512, 512, 3) and texture.any()
    mtl = open(os.path.join(out, 'texture/000001.mtl')).read()
    assert 'map_Kd 000001.png' in mtl
    textured = open(os.path.join(out, 'texture/000001.obj')).read()
    assert 'mtllib 000001.mtl' in textured and '\nvt ' in textured


def test_neutral_mesh_from_shape_and_template_mesh_faces(cache_dir, tmp_path, flame_assets,
                                                        checkpoint_v2):
    """The neutral template is v_template + shapedirs . shape; it does not depend on saving the
    parameters; --template_mesh supplies the faces of mesh/ only.

    Runs on a checkpoint whose regressor is not mean-only (--demo's predicts shape = 0, which
    would make any shape blend look right)."""
    from util.using_flame_parameters import make_prdicted_mesh_neutral
    with open(flame_assets['flame_model'], 'rb') as fh:
        flame = pickle.load(fh, encoding='latin1')
    model_args = ['--img_path', IMAGE, '--load_path', checkpoint_v2,
                  '--flame_model_path', flame_assets['flame_model']]
    with_params = tmp_path / 'with_params'
    proc = run_demo(model_args + ['--out_folder', str(with_params), '--save_flame_parameters=True',
                                  '--neutralize_expression=True'], cache_dir)
    assert proc.returncode == 0, proc.stderr
    params_path = str(with_params / 'params/000001.npy')
    expected, flame_faces = chumpy_neutral(flame_assets['flame_model'], params_path)
    assert np.abs(expected - np.asarray(flame['v_template'])).max() > 1e-3  # shape is not zero
    neutral = trimesh.load(str(with_params / 'neutral_mesh/000001.obj'), process=False)
    np.testing.assert_allclose(neutral.vertices, expected, atol=1e-6)
    np.testing.assert_array_equal(neutral.faces, flame_faces)

    # a template with the FLAME vertex count and a different face list, as a binary PLY
    faces = flame_faces[::-1][:, [0, 2, 1]]
    template = str(tmp_path / 'template.ply')
    trimesh.Trimesh(np.asarray(flame['v_template']), faces, process=False).export(template)
    out = tmp_path / 'out'
    proc = run_demo(model_args + ['--out_folder', str(out), '--neutralize_expression=True',
                                  '--save_obj_file=True', '--template_mesh', template], cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert not (out / 'params').exists()
    neutral = trimesh.load(str(out / 'neutral_mesh/000001.obj'), process=False)
    np.testing.assert_allclose(neutral.vertices, expected, atol=1e-6)
    np.testing.assert_array_equal(neutral.faces, flame_faces)  # the template's faces are for mesh/
    mesh = trimesh.load(str(out / 'mesh/000001.obj'), process=False)
    np.testing.assert_array_equal(mesh.faces, faces)

    # the original's entry point, from the saved parameters, gives that template too
    original = make_prdicted_mesh_neutral(params_path, flame_assets['flame_model'])
    np.testing.assert_allclose(original.v, expected, atol=1e-6)
    np.testing.assert_array_equal(original.f, flame_faces)


def test_missing_image_is_a_one_line_error(cache_dir, tmp_path):
    missing = str(tmp_path / 'nope.jpg')
    proc = run_demo(['--demo', '--img_path', missing, '--out_folder', str(tmp_path / 'o')],
                    cache_dir)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 1 and missing in errors[0]
    assert 'Traceback' not in proc.stderr


def test_missing_model_files_are_named(cache_dir, tmp_path):
    proc = run_demo(['--img_path', IMAGE, '--out_folder', str(tmp_path / 'o'),
                     '--load_path', str(tmp_path / 'model' / 'ring_6_68641'),
                     '--flame_model_path', str(tmp_path / 'flame_model' / 'generic_model.pkl'),
                     '--save_texture=True',
                     '--flame_texture_data_path', str(tmp_path / 'flame_model' / 'tex.npy')],
                    cache_dir)
    assert proc.returncode == 2
    for name in ('ring_6_68641.meta', 'ring_6_68641.index', 'ring_6_68641.data-00000-of-00001',
                 'generic_model.pkl', 'tex.npy', 'model/', 'flame_model/', '--demo'):
        assert name in proc.stderr, name
    assert not (tmp_path / 'o').exists()


def test_batch_with_bad_and_unusual_images(cache_dir, tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    rgb = cv2.imread(IMAGE)
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / 'rgba.png'), cv2.cvtColor(rgb, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / 'deep.png'), rgb.astype(np.uint16) * 257)
    (folder / 'broken.jpg').write_bytes(b'not an image at all')
    (folder / 'long.jpeg').write_bytes(open(IMAGE, 'rb').read())  # NAME = stem, not [:-4]
    (folder / 'long.png').write_bytes(open(IMAGE, 'rb').read())  # same NAME as long.jpeg
    out = tmp_path / 'out'
    proc = run_demo(['--demo', '--img_path', str(folder), '--out_folder', str(out),
                     '--save_obj_file=True'], cache_dir)
    assert proc.returncode == 1
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 2 and 'broken.jpg' in errors[0]
    assert 'long.png' in errors[1] and 'long.jpeg' in errors[1]  # sorted: .jpeg comes first
    for name in ('gray', 'rgba', 'deep', 'long'):
        assert (out / 'images' / (name + '.png')).is_file()
        assert (out / 'mesh' / (name + '.obj')).is_file()
    leftovers = [f for _, _, fs in os.walk(out) for f in fs if 'broken' in f or f.startswith('.')]
    assert leftovers == []


def test_img_size_and_theta_layout_must_match_the_network(cache_dir, tmp_path):
    proc = run_demo(['--demo', '--img_size=256', '--out_folder', str(tmp_path / 'o')], cache_dir)
    assert proc.returncode == 2 and 'takes 224x224 images' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = run_demo(['--demo', '--shape_params=90', '--out_folder', str(tmp_path / 'o')],
                    cache_dir)
    assert proc.returncode == 2 and 'predicts 159 parameters' in proc.stderr and '= 149' in proc.stderr


def test_unknown_flag_is_a_clear_error(cache_dir):
    proc = run_demo(['--no_such_flag=1'], cache_dir)
    assert proc.returncode == 2 and 'no_such_flag' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_checkpoint_folder_and_help(cache_dir, tmp_path):
    """--load_path may name the folder holding a 'checkpoint' file; --help lists the flags."""
    from synthetic.demo_assets import ensure_demo_assets
    files = ensure_demo_assets(cache_dir)
    out = tmp_path / 'o'
    proc = run_demo(['--img_path', IMAGE, '--out_folder', str(out),
                     '--load_path', os.path.dirname(files['load_path']),
                     '--flame_model_path', files['flame_model_path']], cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert (out / 'images' / '000001.png').is_file()
    proc = run_demo(['--help'], cache_dir)
    assert proc.returncode == 0
    for flag in ('--img_path', 'save_texture', '--flame_texture_data_path', 'demo:'):
        assert flag in proc.stdout


def test_leftover_argument_and_empty_folder_are_errors(cache_dir, tmp_path):
    proc = run_demo(['--demo', 'photo.jpg'], cache_dir)
    assert proc.returncode == 2 and "unexpected argument 'photo.jpg'" in proc.stderr
    empty = tmp_path / 'empty'
    empty.mkdir()
    proc = run_demo(['--demo', '--img_path', str(empty)], cache_dir)
    assert proc.returncode == 2 and 'no image or video files' in proc.stderr


# CelebA's published mean landmarks in its 178 x 218 aligned images (list_landmarks_align_celeba
# averages): left eye, right eye, nose tip, left and right mouth corner, image-left first.
CELEBA_MEAN_POINTS = np.array([[69, 111], [108, 111], [88, 136], [72, 152], [105, 152]], float)


@pytest.mark.parametrize('face_scale, face_offset, photo_hw', [
    (1.0, (0.0, 0.0), (218, 178)),      # a CelebA aligned image itself: the whole image is the crop
    (1.7, (210.0, 35.0), (480, 640)),   # a face in a photo, framed by util.face.framing.celeba_box
])
def test_demo_mean_head_lands_on_a_celeba_framed_face(cache_dir, face_scale, face_offset,
                                                      photo_hw):
    """The --demo network's mean prediction, its 68 FLAME landmarks projected with the render
    camera, puts eyes, nose tip and mouth corners within 5 CelebA pixels of CelebA's means."""
    from util.model.tf_backend import RingNet_inference
    from config import default_config
    from smpl_webuser.serialization import load_model_arrays
    from synthetic.demo_assets import ensure_demo_assets
    from util.face.camera import project, render_camera, to_camera
    from util.face.framing import celeba_box
    from util.face.landmarks import (landmarks_68, load_dynamic_embedding,
                                     load_static_embedding, yaw_from_pose)
    from util.face.preprocess import preprocess_image
    files = ensure_demo_assets(cache_dir)
    keypoints = face_scale * CELEBA_MEAN_POINTS + face_offset         # where the face is
    photo = np.random.default_rng(0).integers(0, 256, photo_hw + (3,), dtype=np.uint8)
    box = None if photo_hw == (218, 178) else celeba_box(keypoints)
    crop, proc_param = preprocess_image(photo, 224, box=box)
    net = RingNet_inference(default_config(load_path=files['load_path']))
    verts, theta = net.predict(crop[None], get_parameters=True)
    faces = load_model_arrays(files['flame_model_path'])['f']
    marks = landmarks_68(verts, faces, load_static_embedding(files['flame_static_embedding_path']),
                         load_dynamic_embedding(files['flame_dynamic_embedding_path']),
                         yaw_from_pose(theta[:, 3:9]))[0]
    camera = render_camera(theta[0, :3], proc_param)
    pixels = project(to_camera(marks, camera), camera.f, camera.c)    # (68, 2) photo pixels
    found = np.array([pixels[36:42].mean(0), pixels[42:48].mean(0), pixels[30], pixels[48],
                      pixels[54]])
    distance = np.linalg.norm(found - keypoints, axis=1) / face_scale  # in CelebA pixels
    assert distance.max() < 5, np.round(distance, 1)


def test_demo_files_that_fail_to_generate_leave_nothing_and_say_so(tmp_path, monkeypatch):
    """The FLAME files fail while the child process (TensorFlow, then the checkpoint and its
    conversion) waits: the child is stopped before it writes anything, no demo folder or
    scratch file is left, and the error propagates; the one-time notice was said once."""
    import synthetic.flame
    from synthetic.demo_assets import DEMO_ASSETS_VERSION, ensure_demo_assets

    def failing(folder, seed=0):
        raise OSError(28, 'No space left on device', os.path.join(folder, 'generic_model.pkl'))
    monkeypatch.setattr(synthetic.flame, 'write_flame_assets', failing)
    children = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            children.append(self)
    monkeypatch.setattr(subprocess, 'Popen', Recorded)
    said = []
    with pytest.raises(OSError, match='No space left on device'):
        ensure_demo_assets(str(tmp_path), say=said.append)
    assert len(said) == 1 and said[0].startswith('generating the demo files')
    assert os.listdir(str(tmp_path)) == []  # no demo-vN, no .tmp-* folder, no .onnx
    assert len(children) == 1 and children[0].poll() is not None  # stopped, and reaped
    assert not (tmp_path / DEMO_ASSETS_VERSION).exists()
