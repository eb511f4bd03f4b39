"""util.face.detect on ONNX Runtime (util.face.mtcnn_stages around the cached conversions of
util.face.detector_cache) against the mtcnn package itself on TensorFlow, and the cache's
conversion, record and refusals.

The expectations are mtcnn's own detections of the same pictures (its numpy output, not read
through util.face.detect) and, in a fresh process, the hand-annotated eyes of the astronaut.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')
data = pytest.importorskip('skimage.data')
pytest.importorskip('onnxruntime')
pytest.importorskip('tf2onnx')

from test_detect import ASTRONAUT_EYES  # noqa: E402
from util.face import detector_cache as cache_module  # noqa: E402
from util.face import mtcnn_stages  # noqa: E402
from util.face.detect import MTCNN_MIN_FACE, FaceDetector  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTING = 'converting the face detector for ONNX Runtime, once'
BOX_TOL_PX = 1.0
SCORE_TOL = 1e-3


def _astronaut_variants():
    """name -> (H, W, 3) uint8: the astronaut as is, scaled, mirrored, two side by side, and a
    face-less photo."""
    image = data.astronaut()
    return {'astronaut': image,
            'scaled_0.6': cv2.resize(image, (307, 307), interpolation=cv2.INTER_AREA),
            'scaled_1.3': cv2.resize(image, (666, 666), interpolation=cv2.INTER_CUBIC),
            'mirrored': np.ascontiguousarray(image[:, ::-1]),
            'two_side_by_side': np.concatenate([image, image[:, ::-1]], axis=1),
            'no_face': data.rocket()}


VARIANTS = _astronaut_variants()


@pytest.fixture(scope='module')
def mtcnn_tf():
    """mtcnn on TensorFlow as its users call it: image -> (N, 16) numpy rows."""
    from mtcnn import MTCNN
    mtcnn = MTCNN()
    return lambda image: mtcnn.detect_faces(image, output_type='numpy', box_format='xyxy',
                                            fit_to_image=False)


def _by_x(faces):
    return sorted(faces, key=lambda face: face.box[0])


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_onnx_detections_equal_mtcnn_on_tensorflow(name, detector_cache, mtcnn_tf):
    image = VARIANTS[name]
    # at MTCNN's own minimum the image is not downscaled: both see the same pixels
    faces = _by_x(FaceDetector(cache_dir=detector_cache[0]).detect(image, MTCNN_MIN_FACE))
    rows = sorted(mtcnn_tf(image), key=lambda row: row[1])
    assert len(faces) == len(rows)
    assert len(rows) == {'no_face': 0, 'two_side_by_side': 2}.get(name, 1)
    for face, row in zip(faces, rows):
        np.testing.assert_allclose(face.box, row[1:5], atol=BOX_TOL_PX)
        np.testing.assert_allclose(face.keypoints, np.stack([row[6:11], row[11:16]], axis=1),
                                   atol=BOX_TOL_PX)
        assert abs(face.score - row[5]) <= SCORE_TOL


def test_the_cold_run_converted_once_and_a_new_process_detects_without_tensorflow(
        detector_cache):
    cache, said = detector_cache
    assert len(said) == 1 and said[0].startswith(CONVERTING), said
    script = ('import json, sys\n'
              'from skimage import data\n'
              'from util.face.detect import FaceDetector\n'
              'faces = FaceDetector(cache_dir=sys.argv[1]).detect(data.astronaut(), 40)\n'
              'print(json.dumps({"keypoints": [f.keypoints.tolist() for f in faces],\n'
              '                  "tensorflow": "tensorflow" in sys.modules}))\n')
    proc = subprocess.run([sys.executable, '-c', script, cache], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''  # warm: not a line
    result = json.loads(proc.stdout)
    assert result['tensorflow'] is False
    assert len(result['keypoints']) == 1
    # the eyes where they were annotated by hand (about +-1 px; MTCNN's eyes are not pupils)
    np.testing.assert_allclose(np.array(result['keypoints'][0])[:2], ASTRONAUT_EYES, atol=3.0)


def _record(folder):
    with open(os.path.join(folder, cache_module.RECORD), encoding='utf-8') as fh:
        return json.load(fh)


def _own_copy(detector_cache, tmp_path):
    """A copy of the session's warm cache (tests that spoil it must not spoil it for others)."""
    own = str(tmp_path / 'cache')
    shutil.copytree(detector_cache[0], own)
    return own


def test_a_corrupt_cached_model_is_never_run_and_is_converted_again(detector_cache, tmp_path,
                                                                     monkeypatch):
    import onnxruntime
    own = _own_copy(detector_cache, tmp_path)
    folder = cache_module.DetectorCache(own).folder
    record = _record(folder)
    pnet = os.path.join(folder, record['models']['pnet']['file'])
    with open(pnet, 'r+b') as fh:  # flip bytes inside the weights
        fh.seek(os.path.getsize(pnet) // 2)
        chunk = fh.read(16)
        fh.seek(-16, os.SEEK_CUR)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    with open(pnet, 'rb') as fh:
        corrupt = hashlib.sha256(fh.read()).hexdigest()
    loaded = []
    session = onnxruntime.InferenceSession

    def recording_session(path, *args, **kwargs):
        with open(path, 'rb') as fh:
            loaded.append(hashlib.sha256(fh.read()).hexdigest())
        return session(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, 'InferenceSession', recording_session)
    said = []
    faces = FaceDetector(cache_dir=own, say=said.append).detect(data.astronaut(), 40)
    assert len(said) == 1 and said[0].startswith(CONVERTING), said
    assert corrupt not in loaded and len(loaded) == 3
    assert sorted(loaded) == sorted(m['sha256'] for m in _record(folder)['models'].values())
    assert len(faces) == 1
    assert not any(name.startswith('pnet-') and name != _record(folder)['models']['pnet']['file']
                   for name in os.listdir(folder))  # the corrupt file was tidied away


def test_a_conversion_that_fails_verification_falls_back_to_mtcnn_on_tensorflow(tmp_path,
                                                                                monkeypatch):
    # every error is >= 0: nothing passes a negative limit (the child reads it from argv)
    monkeypatch.setattr(cache_module, 'MAX_ERROR', -1.0)
    said = []
    faces = FaceDetector(cache_dir=str(tmp_path), say=said.append).detect(data.astronaut(), 40)
    assert len(said) == 2 and said[0].startswith(CONVERTING), said
    assert said[1].startswith('error: the face detector cannot run on ONNX Runtime')
    assert 'differs from TensorFlow' in said[1] and 'detecting with mtcnn on TensorFlow' in said[1]
    assert len(faces) == 1  # found by mtcnn itself
    assert cache_module.DetectorCache(str(tmp_path)).models() is None  # nothing was cached


def test_area_weights_cover_each_cell_once():
    # each output cell averages in / out input pixels, every input pixel counted once (up to
    # the float32 cell bounds: 3e-5 px at 512)
    for size_in, size_out in ((512, 307), (333, 12), (20, 20)):
        index, weights = mtcnn_stages.area_weights(size_in, size_out)
        np.testing.assert_allclose(weights.sum(axis=1), size_in / size_out, atol=1e-4)
        totals = np.bincount(index.ravel(), weights.ravel(), minlength=size_in)
        np.testing.assert_allclose(totals, 1.0, atol=1e-4)


def test_suppression_keeps_mtcnns_rule():
    # b overlaps a; c overlaps b but not a: mtcnn drops c too (a dropped box still drops)
    rows = np.array([[0, 0, 10, 10, 0.9], [2, 0, 12, 10, 0.8], [7, 0, 17, 10, 0.7],
                     [50, 50, 60, 60, 0.6]])
    kept = mtcnn_stages.suppress(rows, 0.3)
    np.testing.assert_array_equal(kept[:, 4], [0.9, 0.6])
