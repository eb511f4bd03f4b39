"""The prediction side of NoW: ``python -m demo --now_dataset NOW`` on a fake NoW folder with the
--demo model, read back independently, then ``python -m now_evaluation`` on what it wrote; and
how a NoW image is framed."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import trimesh

from tests.make_fake_now import make_fake_now
from util.face.detect import Face
from util.face.framing import celeba_box
from util.pipeline.now_inputs import now_frame
from util.pipeline.reading import face_frames
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(module, args, cache_dir):
    env = dict(os.environ, RINGNET_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, '-m', module] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_now_predictions_end_to_end(tmp_path, flame_assets):
    cache_dir, now, pred = str(tmp_path / 'cache'), str(tmp_path / 'NOW'), str(tmp_path / 'PRED')
    make_fake_now(now, flame_assets['flame_model'], flame_assets['static_embedding'],
                  subjects=2, seed=3)
    lines = open(os.path.join(now, 'imagepathsvalidation.txt')).read().split()
    proc = run('demo', ['--demo', '--now_dataset', now, '--now_split', 'val', '--out_folder',
                        pred, '--save_flame_parameters'], cache_dir)
    assert proc.returncode == 0, proc.stderr
    summary = without_speed(proc.stdout.strip().splitlines()[-1])
    # the last subject's selfie box lies on the background (tests/make_fake_now.py)
    assert summary.startswith("8 of 8 input(s) done, 1 framed from NoW's face box"), summary
    manifest = [json.loads(line) for line in open(os.path.join(pred, 'manifest.jsonl'))]
    assert [m['status'] for m in manifest] == ['ok'] * 8

    from synthetic.demo_assets import ensure_demo_assets  # the files the run used
    files = ensure_demo_assets(cache_dir)
    with open(files['flame_model_path'], 'rb') as fh:
        import chumpy  # noqa: F401  (a test requirement: the FLAME pickle's Ch arrays)
        model = pickle.load(fh, encoding='latin1')
    with open(files['flame_static_embedding_path'], 'rb') as fh:
        static = pickle.load(fh, encoding='latin1')
    template = np.asarray(model['v_template'])
    shapedirs = np.asarray(model['shapedirs'])
    faces = np.asarray(model['f'], dtype=np.int64)
    for line in lines:
        name = os.path.splitext(line)[0]
        mesh = trimesh.load(os.path.join(pred, name + '.obj'), process=False)
        shape = np.load(os.path.join(pred, 'params', name + '.npy'), allow_pickle=True)[()][
            'shape']
        # neutral: the template plus the shape blend shapes only (no expression, no pose)
        neutral = template + shapedirs[:, :, :len(shape)] @ shape
        np.testing.assert_allclose(mesh.vertices, neutral, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(mesh.faces, faces)
        # the 7 landmarks: static landmarks 19, 22, 25, 28, 16, 31, 37 on that mesh
        landmarks = np.load(os.path.join(pred, name + '.npy'), allow_pickle=False)
        ids = [19, 22, 25, 28, 16, 31, 37]
        tri = np.asarray(static['lmk_face_idx'], dtype=np.int64)[ids]
        bary = np.asarray(static['lmk_b_coords'])[ids]
        expected = np.einsum('lk,lkc->lc', bary, neutral[faces[tri]])
        assert landmarks.shape == (7, 3) and landmarks.dtype == np.float64
        np.testing.assert_allclose(landmarks, expected, rtol=0, atol=1e-12)

    evaluation = run('now_evaluation', ['--predictions', pred, '--dataset', now,
                                        '--workers', '2'], cache_dir)
    assert evaluation.returncode == 0, evaluation.stderr
    results = json.load(open(os.path.join(pred, 'results', 'results.json')))
    assert (results['overall']['images'], results['overall']['missing']) == (8, 0)
    assert 0 < results['overall']['median'] < 20   # mm: the synthetic mean face vs the scans

    # a second run with --skip_existing has nothing left to do
    again = run('demo', ['--demo', '--now_dataset', now, '--out_folder', pred,
                         '--save_flame_parameters', '--skip_existing'], cache_dir)
    assert again.returncode == 0 and '8 skipped' in again.stdout, again.stdout + again.stderr


def test_now_flags_are_refused_with_img_path(tmp_path):
    for args, message in (
            (['--now_dataset', str(tmp_path), '--img_path', 'x.jpg'], '--img_path'),
            (['--now_dataset', str(tmp_path), '--detect_faces'], '--detect_faces'),
            (['--now_split', 'test'], '--now_split needs --now_dataset')):
        proc = run('demo', ['--demo'] + args + ['--out_folder', str(tmp_path / 'o')],
                   str(tmp_path / 'cache'))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    proc = run('demo', ['--demo', '--now_dataset', str(tmp_path), '--out_folder',
                        str(tmp_path / 'o')], str(tmp_path / 'cache'))
    assert proc.returncode == 2
    assert 'imagepathsvalidation.txt: no such file' in proc.stderr, proc.stderr


class _Detector:
    """Stands in for MTCNN: the faces it 'finds' in the region it is shown (region pixels)."""

    def __init__(self, faces):
        self.faces, self.shown = faces, []

    def detect(self, image, min_face):
        self.shown.append(image.shape)
        return self.faces


def test_now_image_framed_like_detect_faces_or_from_its_box():
    image = np.zeros((400, 300, 3), dtype=np.uint8)
    box = (100.0, 120.0, 180.0, 220.0)
    # the detector sees the box grown by half its size per side: x 60..220, y 70..270
    keypoints = np.array([[60.0, 80.0], [90.0, 80.0], [75.0, 100.0], [62.0, 115.0],
                          [88.0, 115.0]])
    inside = Face(np.array([45.0, 60.0, 105.0, 140.0]), 0.99, keypoints)    # centre (75, 100)
    outside = Face(np.array([0.0, 0.0, 30.0, 30.0]), 0.99, keypoints - 40)  # centre (15, 15)
    detector = _Detector([outside, inside])
    frame, found = now_frame('s/c/n', image, box, detector)
    assert found and detector.shown == [(200, 160, 3)]
    # in image pixels the face is shifted by the region's corner (60, 70); framed as
    # --detect_faces frames a face
    shifted = Face(inside.box + [60, 70, 60, 70], inside.score, keypoints + [60, 70])
    expected = face_frames('s/c/n', image, [shifted])[0]
    np.testing.assert_allclose(frame.box, expected.box)
    np.testing.assert_allclose(frame.box, celeba_box(keypoints + [60, 70]))
    np.testing.assert_allclose(frame.detection.keypoints, keypoints + [60, 70])
    # no face in the box: the box itself, a square 1.6 x its mean side (144) around its centre
    frame, found = now_frame('s/c/n', image, box, _Detector([outside]))
    assert not found and frame.detection is None
    np.testing.assert_allclose(frame.box, (140 - 72, 170 - 72, 140 + 72, 170 + 72))

