"""Find faces in a photo with MTCNN (the ``mtcnn`` package, which ships its weights).

mtcnn's networks run on ONNX Runtime, converted once into the user cache
(util.face.detector_cache) and driven by util.face.mtcnn_stages, which finds the same faces as
mtcnn; where that cannot be (no onnxruntime or tf2onnx, a refused conversion) one line says so
and mtcnn itself runs on TensorFlow.

One image at a time: ``FaceDetector().detect(image, min_face)`` gives every detection in input
pixels; ``select_faces`` then drops the small ones, keeps the largest few and numbers them left
to right; ``util.face.framing.celeba_box(face.keypoints)`` gives the crop box for each.

The smallest face is controlled by downscaling the image ourselves, not with mtcnn's own
``min_face_size``: in mtcnn 1.0.0 its pyramid depth ignores that value, so above about 25 the
last level falls below P-Net's 12-px window and the whole call returns no faces (measured: 30,
40, 60 find nothing in a photo where 20 finds the face). A smaller image is also what makes big
photos cheap: the P-Net pyramid over the full image dominates the cost. The networks are
loaded when a detector is first used, so importing this module stays cheap.
"""
import collections
import functools
import sys

import cv2
import numpy as np

from util.face import mtcnn_stages
from util.face.detector_cache import onnx_networks
from util.io.stderr_filter import tensorflow_start_filtered

# box (4,) float64 (x0, y0, x1, y1) and keypoints (5, 2) float64 in input pixels; keypoints in
# util.face.framing.CELEBA_POINTS order: left eye, right eye, nose, left and right mouth corners
# (left = image-left). score: MTCNN's confidence, float.
Face = collections.namedtuple('Face', 'box score keypoints')

MTCNN_MIN_FACE = mtcnn_stages.MIN_FACE  # the smallest face MTCNN finds, in its input (px)
DEFAULT_MIN_FACE = 40  # px in the input image: the auto rule never goes below this
AUTO_FRACTION = 32  # auto rule: faces smaller than 1/32 of the longer image side are ignored
_MIN_SIDE = 12  # P-Net's input window; a smaller image holds no detectable face


def min_face_side(image_shape, min_face_size=0):
    """Smallest face side in input pixels, for an image of shape (H, W, ...).

    min_face_size > 0 is honoured exactly; 0 (auto) is max(DEFAULT_MIN_FACE, longer side /
    AUTO_FRACTION), which bounds the detection cost on big photos: a 1920-px image is searched
    at 640 px.
    """
    if min_face_size < 0:
        raise ValueError('min_face_size must be >= 0 (0 = auto), got %r' % (min_face_size,))
    if min_face_size > 0:
        return float(min_face_size)
    return max(float(DEFAULT_MIN_FACE), max(image_shape[:2]) / float(AUTO_FRACTION))


def detection_scale(min_face):
    """Factor to resize the image by so that a face of ``min_face`` px becomes MTCNN's smallest
    (MTCNN_MIN_FACE px); never enlarges (<= 1)."""
    if not min_face > 0:
        raise ValueError('min_face must be > 0 px, got %r' % (min_face,))
    return min(1.0, MTCNN_MIN_FACE / float(min_face))


def _box_side(box):
    """(4,) (x0, y0, x1, y1) -> the box's longer side."""
    return max(box[2] - box[0], box[3] - box[1])


def select_faces(faces, min_face, max_faces=0):
    """[Face] -> (kept [Face], n_too_small int).

    Faces whose box's longer side is below ``min_face`` are dropped and counted; with
    max_faces > 0 only the max_faces largest boxes (by area) are kept. The kept faces are
    ordered left to right by box centre x (ties: top to bottom by centre y), which is the
    order they are numbered in.
    """
    big = [f for f in faces if _box_side(f.box) >= min_face]
    n_too_small = len(faces) - len(big)
    if max_faces > 0:
        big = sorted(big, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]),
                     reverse=True)[:max_faces]
    order = sorted(big, key=lambda f: ((f.box[0] + f.box[2]) / 2.0, (f.box[1] + f.box[3]) / 2.0))
    return order, n_too_small


def _downscale(image, scale):
    """(H, W, 3) -> (image resized by ``scale`` (INTER_AREA), actual factors (2,) (fx, fy)).

    The size is rounded per axis, so the factors new / old differ slightly from ``scale``.
    """
    h, w = image.shape[:2]
    if scale >= 1.0:
        return image, np.ones(2)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return small, np.array([new_w / float(w), new_h / float(h)])


def _to_input_pixels(xy, factors):
    """(..., 2) positions in the resized image -> input pixels, for resize factors (2,) (fx, fy).

    Pixel-centre convention (integer = pixel centre), as cv2.resize samples: x = (u + 0.5) /
    fx - 0.5. (A plain u / fx differs by 0.5 (1 / fx - 1) px, 1 px at fx = 1/3.)
    """
    return (np.asarray(xy, dtype=np.float64) + 0.5) / factors - 0.5


def _faces_from_rows(rows, factors):
    """mtcnn's numpy output (N, 16) (or util.face.mtcnn_stages.detect_rows') -> [Face] in input
    pixels.

    Row layout (mtcnn 1.0.0, box_format='xyxy'): image index, x0, y0, x1, y1, confidence, then
    the x of left eye, right eye, nose, mouth left, mouth right, then their five y. mtcnn's
    'left' is image-left (checked on real photos and their mirror images), so its order is
    already CELEBA_POINTS order.
    """
    faces = []
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
        box = _to_input_pixels(row[1:5].reshape(2, 2), factors).reshape(4)
        keypoints = _to_input_pixels(np.stack([row[6:11], row[11:16]], axis=1), factors)
        faces.append(Face(box=box, score=float(row[5]), keypoints=keypoints))
    return faces


def compile_stages(mtcnn):
    """Run each of mtcnn's three networks as one TensorFlow graph call -> ``mtcnn`` (for mtcnn
    itself, on TensorFlow: the fallback, and the reference in tests and bench).

    mtcnn 1.0 calls its Keras networks eagerly, layer by layer, once per pyramid level: that
    dispatch, not the arithmetic, is most of its time (measured at 640x360: 109 ms eager, 31 ms
    compiled; a new image size costs one retrace of ~10 ms, and reduce_retracing soon makes
    the traced shapes generic). The stages keep their network in ``_model`` (mtcnn 1.x); if a
    later version does not, the networks simply stay eager.
    """
    import tensorflow as tf
    for stage in getattr(mtcnn, 'stages', []):
        network = getattr(stage, '_model', None)
        if callable(network):
            stage._model = tf.function(network, reduce_retracing=True)
    return mtcnn


def mtcnn_rows():
    """mtcnn itself on TensorFlow -> callable (H, W, 3) uint8 -> its (N, 16) numpy rows."""
    with tensorflow_start_filtered():  # TensorFlow's start-up notices, as it loads now
        from mtcnn import MTCNN  # lazy: pulls in TensorFlow
    mtcnn = compile_stages(MTCNN())
    return functools.partial(mtcnn.detect_faces, output_type='numpy', box_format='xyxy',
                             fit_to_image=False)


class FaceDetector:
    """MTCNN face detector, loaded on first use: on ONNX Runtime from the user cache
    (``cache_dir``, default util.io.cache.default_cache_dir()), converted there first if
    needed, else mtcnn on TensorFlow. ``say`` (default: print to stderr) gets the one-line
    notices: the conversion, or why TensorFlow is used."""

    def __init__(self, cache_dir=None, say=None):
        self._cache_dir = cache_dir
        self._say = say or (lambda line: print(line, file=sys.stderr))
        self._rows = None  # (H, W, 3) uint8 -> (N, 16) rows

    def _detect_rows(self):
        if self._rows is None:
            networks = onnx_networks(self._say, self._cache_dir)
            self._rows = ((lambda image: mtcnn_stages.detect_rows(image, *networks))
                          if networks else mtcnn_rows())
        return self._rows

    def detect(self, image, min_face):
        """(H, W, 3) uint8 RGB, min_face px -> [Face], every detection, unfiltered and unsorted.

        The image is downscaled by detection_scale(min_face) so that MTCNN, at its own minimum
        of MTCNN_MIN_FACE px, finds faces from about min_face px up; boxes and keypoints are
        mapped back to input pixels. Boxes are not clipped to the image: a face cut by the
        border keeps its full-size box. An image too small to hold a face gives [].
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError('expected an (H,W,3) uint8 image, got %s %s'
                             % (image.shape, image.dtype))
        small, factors = _downscale(image, detection_scale(min_face))
        if min(small.shape[:2]) < _MIN_SIDE:
            return []
        rows = self._detect_rows()(np.ascontiguousarray(small))
        return _faces_from_rows(rows, factors)
