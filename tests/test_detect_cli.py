"""``python -m demo --detect_faces`` end to end (--demo mean checkpoint), on scenes of the
public-domain astronaut portrait pasted at known places (tests/test_detect.py builds them)."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from output_sets import files_under
from test_detect import _paste_head, _smooth_noise
from util.io.mesh_io import read_obj
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_demo(args, cache):
    env = dict(os.environ, RINGNET_CACHE_DIR=cache)
    return subprocess.run([sys.executable, '-m', 'demo', '--demo'] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('cache'))  # the demo files, generated once


@pytest.fixture(scope='module')
def detect_run(tmp_path_factory, cache):
    folder = tmp_path_factory.mktemp('scenes')
    scene = _smooth_noise(600, 900, 1)
    pasted = [_paste_head(scene, 120, 600, 250, True)[0],   # right, smaller
              _paste_head(scene, 200, 80, 150, False)[0],   # left, larger
              _paste_head(scene, 160, 780, -30, False)[0]]  # cut by the top and right borders
    cv2.imwrite(str(folder / 'group.png'), scene[..., ::-1])
    cv2.imwrite(str(folder / 'empty.png'), _smooth_noise(400, 500, 2)[..., ::-1])
    small = _smooth_noise(800, 800, 3)
    _paste_head(small, 50, 300, 300, False)  # a ~30 px face: below the 40 px minimum
    cv2.imwrite(str(folder / 'small.png'), small[..., ::-1])
    out = tmp_path_factory.mktemp('out')
    proc = run_demo(['--detect_faces', '--img_path', str(folder), '--out_folder', str(out),
                     '--save_obj_file', '--save_flame_parameters', '--save_landmarks',
                     '--min_face_size', '40'], cache)
    return folder, out, proc, pasted


def test_the_detector_is_converted_once_and_later_runs_say_nothing_of_it(detect_run, tmp_path,
                                                                         cache):
    folder, _, proc, _ = detect_run
    assert proc.stderr.count('converting the face detector for ONNX Runtime, once') == 1
    again = run_demo(['--detect_faces', '--img_path', str(folder / 'group.png'),
                      '--out_folder', str(tmp_path / 'out')], cache)
    assert again.returncode == 0, again.stderr
    assert 'face detector' not in again.stderr and 'TensorFlow' not in again.stderr


def test_faces_named_left_to_right_with_one_panel(detect_run):
    folder, out, proc, pasted = detect_run
    assert proc.returncode == 1, proc.stderr  # two images had no usable face
    per_face = ['landmarks/group_face%d_2d.txt', 'landmarks/group_face%d_3d.txt',
                'mesh/group_face%d.obj', 'params/group_face%d.json', 'params/group_face%d.npy']
    expected = sorted(['images/group.png', 'manifest.jsonl']
                      + [p % k for k in range(3) for p in per_face + ['images/group_face%d.png']])
    assert files_under(out) == expected
    boxes = [json.load(open(out / 'params' / ('group_face%d.json' % k)))['box'] for k in range(3)]
    centres = [(b[0] + b[2]) / 2 for b in boxes]
    assert centres == sorted(centres)  # numbered left to right
    for box, paste in zip(boxes, sorted(pasted)):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert paste[0] <= cx <= paste[2] and paste[1] <= cy <= paste[3]
    panel = cv2.imread(str(out / 'images' / 'group.png'))
    assert panel.shape == (600, 3600, 3)


def test_each_face_of_a_group_gets_its_own_panel_of_its_crop(detect_run):
    """images/group_face<k>.png: the 4 panels of face k's crop box (from its JSON), its longer
    side 512; the input quadrant is the box's pixels (white outside the image), the overlay
    quadrant has the mesh where the face's landmarks project, the white quadrant too."""
    folder, out, _, _ = detect_run
    scene = cv2.imread(str(folder / 'group.png'))
    for k in range(3):
        panel = cv2.imread(str(out / 'images' / ('group_face%d.png' % k)))
        x0, y0, x1, y1 = json.load(open(out / 'params' / ('group_face%d.json' % k)))['crop']['box']
        x0, y0, x1, y1 = int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))
        padded = cv2.copyMakeBorder(scene, 1000, 1000, 1000, 1000, cv2.BORDER_CONSTANT,
                                    value=(255, 255, 255))
        region = padded[y0 + 1000:y1 + 1000, x0 + 1000:x1 + 1000]
        scale = 512 / max(region.shape[:2])
        h, w = round(region.shape[0] * scale), round(region.shape[1] * scale)
        assert panel.shape == (h, 4 * w, 3)
        expected = cv2.resize(region, (w, h), interpolation=cv2.INTER_LINEAR)
        assert np.abs(panel[:, :w].astype(int) - expected).mean() < 3  # the crop, scaled
        points = np.loadtxt(out / 'landmarks' / ('group_face%d_2d.txt' % k))
        inside = [(round((x - x0 + 0.5) * scale - 0.5), round((y - y0 + 0.5) * scale - 0.5))
                  for x, y in points[[30, 33, 8]]]  # nose, below the nose, chin
        for u, v in inside:
            assert 0 <= u < w and 0 <= v < h
            assert np.abs(panel[v, w + u].astype(int) - panel[v, u]).sum() > 30  # mesh over it
            assert (panel[v, 2 * w + u] < 250).any()  # mesh on white


def test_each_mesh_lands_inside_its_face_box(detect_run):
    """The projected mesh centre, with the camera written out from the JSON (formats §4)."""
    _, out, _, _ = detect_run
    for k in range(3):
        record = json.load(open(out / 'params' / ('group_face%d.json' % k)))
        v = read_obj(str(out / 'mesh' / ('group_face%d.obj' % k))).v.astype(np.float64)
        s, tx, ty = record['cam']
        crop = record['crop']
        f = 50000. / crop['scale']
        c = (np.array([112., 112.]) + crop['offset']) / crop['scale']
        t = np.array([tx, ty, 50000. / (112. * s)])
        uv = f * (v[:, :2] + t[:2]) / (v[:, 2:] + t[2]) + c
        x0, y0, x1, y1 = record['box']
        cx, cy = uv.mean(axis=0)
        assert x0 <= cx <= x1 and y0 <= cy <= y1, (k, (cx, cy), record['box'])
        assert record['face'] == k and record['source'].endswith('group.png')
        assert 0.9 < record['score'] <= 1


def test_no_face_and_too_small_are_one_line_failures(detect_run):
    folder, out, proc, _ = detect_run
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert errors == ['error: %s: no face found' % (folder / 'empty.png'),
                      'error: %s: no face found of at least 40 px (1 smaller; see '
                      '--min_face_size)' % (folder / 'small.png')]
    assert without_speed(proc.stdout.strip().splitlines()[-1]) == '1 of 3 input(s) done, outputs in %s' % out
    records = [json.loads(line) for line in open(out / 'manifest.jsonl')]
    assert [(os.path.basename(r['input']), r['status'], r['faces']) for r in records] == [
        ('empty.png', 'failed', 0), ('group.png', 'ok', 3), ('small.png', 'failed', 0)]
    assert records[0]['error'] == '%s: no face found' % (folder / 'empty.png')
    listed = sorted(p for r in records for p in r['outputs']) + ['manifest.jsonl']
    assert sorted(listed) == files_under(out)


def test_max_faces_keeps_the_largest(detect_run, tmp_path, cache):
    folder, _, _, pasted = detect_run
    out = tmp_path / 'out'
    proc = run_demo(['--detect_faces', '--max_faces', '1', '--img_path',
                     str(folder / 'group.png'), '--out_folder', str(out),
                     '--save_flame_parameters'], cache)
    assert proc.returncode == 0, proc.stderr
    record = json.load(open(out / 'params' / 'group_face0.json'))
    assert not (out / 'params' / 'group_face1.json').exists()
    x0, y0, x1, y1 = max(pasted, key=lambda p: (p[2] - p[0]) * (p[3] - p[1]))
    cx, cy = (record['box'][0] + record['box'][2]) / 2, (record['box'][1] + record['box'][3]) / 2
    assert x0 <= cx <= x1 and y0 <= cy <= y1


def test_a_face_larger_than_the_image_allows_still_crops(tmp_path, cache):
    """The sample is a close crop: the CelebA frame of its face runs past the image, and the
    crop fills the outside with edge pixels, as the original's does."""
    out = tmp_path / 'out'
    proc = run_demo(['--detect_faces', '--img_path', os.path.join(ROOT, 'input_images',
                                                                  '000001.jpg'),
                     '--out_folder', str(out), '--save_flame_parameters'], cache)
    assert proc.returncode == 0, proc.stderr
    record = json.load(open(out / 'params' / '000001_face0.json'))
    x0, y0, x1, y1 = record['crop']['box']
    assert y0 < 0 or x0 < 0 or x1 > 250 or y1 > 250  # the frame leaves the 250 x 250 image
    fx0, fy0, fx1, fy1 = record['box']
    assert x0 < fx0 < fx1 < x1 and y0 < fy0 < fy1 < y1  # and holds the detected face


def test_an_image_named_like_a_face_output_is_no_clash(detect_run, tmp_path, cache):
    """x.png's faces are x_face<k>, its panel x; x_face0.png's panel is x_face0: no file is
    shared, so nothing is refused."""
    folder, _, _, _ = detect_run
    inputs = tmp_path / 'in'
    inputs.mkdir()
    group = (folder / 'group.png').read_bytes()
    (inputs / 'x.png').write_bytes(group)
    (inputs / 'x_face0.png').write_bytes(group)
    out = tmp_path / 'out'
    proc = run_demo(['--detect_faces', '--max_faces', '1', '--img_path', str(inputs),
                     '--out_folder', str(out), '--save_obj_file'], cache)
    assert proc.returncode == 0, proc.stderr
    assert files_under(out) == ['images/x.png', 'images/x_face0.png', 'manifest.jsonl',
                                'mesh/x_face0.obj', 'mesh/x_face0_face0.obj']
