"""Time face detection (util.face.detect) against one RingNet encoder forward pass on this machine.

Usage: python -m bench.bench_detect [--load_path PREFIX] [--repeats N]
Scenes are smooth noise with pasted heads of skimage.data.astronaut(). Detection uses the auto
min face (util.face.detect.min_face_side); each time is the best of ``repeats`` after a warm-up. The
encoder is RingNet predict for one 224 x 224 image; without --load_path a synthetic full-size
checkpoint is generated first (bench.bench_inference). The goal is detection <= 1.0x the
encoder at 1920 x 1080. The first rows time the ONNX detector against mtcnn on TensorFlow on the
astronaut (measured on 2 shared, busy cores: 53-60 ms ONNX, 43-47 ms TensorFlow with compiled
networks: per image no faster; the gain is a process that never imports TensorFlow, whose first
detection took 0.4 s instead of 3.4 s).
"""
import argparse
import tempfile

import cv2
import numpy as np

from bench.bench_inference import synthetic_checkpoint, timed  # also quiets TensorFlow's log

HEAD = (140, 10, 310, 200)  # (x0, y0, x1, y1) of the astronaut's head, hair to chin
# (width, height) -> pasted heads (height, x0, y0)
SCENES = {(640, 480): [(150, 40, 60), (260, 330, 180)],
          (1920, 1080): [(180, 100, 700), (360, 600, 200), (700, 1100, 300)]}


def scene(width, height, pastes, seed=0):
    """(height, width, 3) uint8: smooth colour noise with astronaut heads pasted in."""
    from skimage import data
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 100 + 2, width // 100 + 2, 3)).astype(np.float32)
    image = np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255)
    image = image.astype(np.uint8)
    head = data.astronaut()[HEAD[1]:HEAD[3], HEAD[0]:HEAD[2]]
    for h, x0, y0 in pastes:
        w = int(round(h * head.shape[1] / head.shape[0]))
        image[y0:y0 + h, x0:x0 + w] = cv2.resize(head, (w, h), interpolation=cv2.INTER_AREA)
    return image


def best_ms(fn, repeats):
    """(best wall time in ms over ``repeats`` calls after one warm-up, last result)."""
    out = fn()
    best = float('inf')
    for _ in range(repeats):
        out, seconds = timed(fn)
        best = min(best, seconds)
    return 1000.0 * best, out


def encoder_ms(load_path, repeats):
    """Best per-call ms of RingNet predict on one 224 x 224 image."""
    from config import default_config
    from util.model.tf_backend import RingNet_inference
    net = RingNet_inference(default_config(load_path=load_path))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    return best_ms(lambda: net.predict(image), repeats)[0]


def onnx_vs_tf_rows(detector, repeats):
    """[(label, ms, faces found)] on skimage.data.astronaut() at MTCNN's own minimum (no
    downscaling): the ONNX networks (util.face.mtcnn_stages) and mtcnn itself on TensorFlow
    (its networks compiled, as the fallback runs them)."""
    from skimage import data
    from util.face.detect import MTCNN_MIN_FACE, mtcnn_rows
    image, tf_rows = data.astronaut(), mtcnn_rows()
    onnx_ms, faces = best_ms(lambda: detector.detect(image, MTCNN_MIN_FACE), repeats)
    tf_ms, found = best_ms(lambda: tf_rows(image), repeats)
    return [('astronaut 512x512, ONNX Runtime', onnx_ms, '%d/1' % len(faces)),
            ('astronaut 512x512, mtcnn on TensorFlow (%.2fx ONNX)' % (tf_ms / onnx_ms), tf_ms,
             '%d/1' % len(found))]


def detection_rows(repeats):
    """[(label, ms, faces found)] for the auto min face, the same with eager networks, mtcnn
    as is at full size, and ONNX against TensorFlow on the astronaut."""
    from mtcnn import MTCNN
    from util.face.detect import FaceDetector, _downscale, detection_scale, min_face_side
    detector, mtcnn = FaceDetector(), MTCNN()
    rows = onnx_vs_tf_rows(detector, repeats)
    for (w, h), pastes in SCENES.items():
        image = scene(w, h, pastes)
        min_face = min_face_side(image.shape)
        small_w = int(round(w * detection_scale(min_face)))
        ms, faces = best_ms(lambda: detector.detect(image, min_face), repeats)
        rows.append(('%dx%d auto (min face %d, at %d px)' % (w, h, min_face, small_w), ms,
                     '%d/%d' % (len(faces), len(pastes))))
        if w < 1920:
            continue
        # extras: the same downscaled image through mtcnn's eager networks (what
        # util.face.detect.compile_stages saves), and mtcnn as is on the full image
        eager = lambda: mtcnn.detect_faces(  # noqa: E731
            _downscale(image, detection_scale(min_face))[0])
        ms, faces = best_ms(eager, repeats)
        rows.append(('%dx%d auto, eager networks' % (w, h), ms,
                     '%d/%d' % (len(faces), len(pastes))))
        ms, faces = best_ms(lambda: mtcnn.detect_faces(image), repeats)
        rows.append(('%dx%d full size (mtcnn as is)' % (w, h), ms,
                     '%d/%d' % (len(faces), len(pastes))))
    return rows


def bench(load_path, repeats):
    rows = detection_rows(repeats)
    encoder = encoder_ms(load_path, repeats)
    print('encoder forward, 1 image 224x224: %.1f ms' % encoder)
    print('%-44s %9s %7s %6s' % ('detection', 'ms', 'x enc', 'faces'))
    for label, ms, found in rows:
        print('%-44s %9.1f %7.2f %6s' % (label, ms, ms / encoder, found))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--load_path', default='', help='checkpoint prefix (default: synthetic)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs after a warm-up')
    args = parser.parse_args(argv)
    if args.load_path:
        bench(args.load_path, args.repeats)
        return
    with tempfile.TemporaryDirectory() as folder:
        bench(synthetic_checkpoint(folder), args.repeats)


if __name__ == '__main__':
    main()
