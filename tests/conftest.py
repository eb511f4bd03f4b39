"""Shared fixtures: synthetic assets in the original formats, generated once per test session."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='session')
def flame_assets(tmp_path_factory):
    """Paths of a full-size synthetic FLAME model, texture data and landmark embeddings."""
    from synthetic.flame import write_flame_assets
    return write_flame_assets(str(tmp_path_factory.mktemp('flame')), seed=0)


@pytest.fixture(scope='session')
def checkpoint_v2(tmp_path_factory, flame_assets):
    """Prefix of a synthetic RingNet checkpoint (ResNet-50 v2 encoder)."""
    from synthetic.checkpoint import write_checkpoint
    prefix = os.path.join(str(tmp_path_factory.mktemp('ckpt_v2')), 'ring_6_68641')
    return write_checkpoint(prefix, flame_assets['flame_model'], variant='v2', seed=0)


@pytest.fixture(scope='session')
def checkpoint_v1(tmp_path_factory, flame_assets):
    """ResNet-50 v1 encoder, input ``input_images_1`` (as when the original demo imported it)."""
    from synthetic.checkpoint import write_checkpoint
    prefix = os.path.join(str(tmp_path_factory.mktemp('ckpt_v1')), 'ring_6_68641')
    return write_checkpoint(prefix, flame_assets['flame_model'], variant='v1', seed=1,
                            shadow_placeholder=True)


REPORT_FLAGS = ['--detect_faces', '--save_glb', '--save_obj_file=True',
                '--save_flame_parameters=True', '--neutralize_expression=True',
                '--save_texture=True']
REPORT_CLIP_FRAMES = 20


@pytest.fixture(scope='session')
def report_run(tmp_path_factory):
    """``python -m demo --demo --detect_faces --save_glb`` and every other output (a fresh
    demo cache: TensorFlow) on a folder holding a good photo (000001.jpg), a file that is not
    an image (broken.jpg), a picture with two faces (group.png: the astronaut's head twice on
    smooth noise) and a 20-frame clip (clip.avi, tests/test_video.py's) -> (out folder,
    CompletedProcess, input folder). Used by the report tests."""
    import subprocess

    import cv2
    from test_detect import _paste_head, _smooth_noise
    from test_video import write_clip
    folder = tmp_path_factory.mktemp('report_in')
    image = os.path.join(ROOT, 'input_images', '000001.jpg')
    with open(image, 'rb') as src, open(str(folder / '000001.jpg'), 'wb') as dst:
        dst.write(src.read())
    (folder / 'broken.jpg').write_bytes(b'this is not a JPEG' * 40)
    scene = _smooth_noise(400, 640, 1)
    _paste_head(scene, 150, 60, 120, False)
    _paste_head(scene, 150, 400, 100, True)
    cv2.imwrite(str(folder / 'group.png'), scene[..., ::-1])
    write_clip(folder / 'clip.avi', n_frames=REPORT_CLIP_FRAMES)
    out = tmp_path_factory.mktemp('report_out') / 'out'
    env = dict(os.environ, RINGNET_CACHE_DIR=str(tmp_path_factory.mktemp('report_cache')))
    proc = subprocess.run([sys.executable, '-m', 'demo', '--demo', '--img_path', str(folder),
                           '--out_folder', str(out)] + REPORT_FLAGS, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # broken.jpg
    return out, proc, folder


@pytest.fixture(scope='session')
def stand_in(flame_assets, tmp_path_factory):
    """tests/stand_in.Children: runs of the command in child processes with a stand-in
    network (FLAME's template for every image), for tests about what surrounds the network."""
    from stand_in import Children
    files = {'load_path': 'stand-in', 'flame_model_path': flame_assets['flame_model'],
             'flame_texture_data_path': flame_assets['texture_data'],
             'flame_static_embedding_path': flame_assets['static_embedding'],
             'flame_dynamic_embedding_path': flame_assets['dynamic_embedding']}
    return Children(files, str(tmp_path_factory.mktemp('stand_in')))


@pytest.fixture(scope='session')
def detector_cache(tmp_path_factory):
    """(a cache folder where the face detector was converted for ONNX Runtime once for the
    session, the notices that cold conversion printed)."""
    import numpy as np
    from util.face.detect import FaceDetector
    cache = str(tmp_path_factory.mktemp('detector_cache'))
    said = []
    FaceDetector(cache_dir=cache, say=said.append).detect(np.zeros((24, 24, 3), np.uint8), 20)
    return cache, said
