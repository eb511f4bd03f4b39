"""``python -m util.face.detector_convert FOLDER MAX_ERROR``: convert mtcnn's three Keras
networks to ONNX, check each against TensorFlow, and store them with their record in FOLDER
(docs/formats.md §13a). util.face.detector_cache runs this in a child process, so that
TensorFlow's import and memory never stay in a run; a refusal is one line on stdout and exit
status 1.

P-Net is converted for any image size, R-Net and O-Net for any batch; each is compared with its
Keras network on fixed noise and smooth images (P-Net at several sizes, odd ones included) and
refused when any output differs by more than MAX_ERROR (NaN counts as more).
"""
import os
import sys
import time

import numpy as np

from util.face.detector_cache import NETWORKS, RECORD, mtcnn_files
from util.io.cache import store_file, tidy, write_record
from util.io.stderr_filter import tensorflow_start_filtered

OPSET = 17
SIGNATURES = {'pnet': (None, None, None, 3), 'rnet': (None, 24, 24, 3), 'onet': (None, 48, 48, 3)}
PNET_CHECK_SIZES = ((12, 12), (13, 17), (31, 24), (97, 130))  # (height, width)
CHECK_COUNT = 4  # noise and smooth images each, per check batch


def check_batch(count, height, width, seed=0):
    """(2 count, height, width, 3) float32 in [-1, 1]: ``count`` images of uniform noise, then
    ``count`` of smooth waves of random direction, frequency and phase (fixed seed)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1, 1, (count, height, width, 3))
    y = np.linspace(-1, 1, height)[None, :, None, None]
    x = np.linspace(-1, 1, width)[None, None, :, None]
    a, b, phase = rng.uniform(-6, 6, (3, count, 1, 1, 3))
    waves = 0.9 * np.sin(a * y + b * x + phase)
    return np.concatenate([noise, waves]).astype(np.float32)


def check_inputs(name):
    """The fixed batches ``name``'s network is checked on: P-Net one per size, R-Net and O-Net
    a batch of 2 CHECK_COUNT and a batch of one."""
    if name == 'pnet':
        return [check_batch(1, h, w, seed=h) for h, w in PNET_CHECK_SIZES]
    side = SIGNATURES[name][1]
    batch = check_batch(CHECK_COUNT, side, side)
    return [batch, batch[-1:]]


def to_onnx(network, shape):
    """A Keras network -> serialized ONNX model (bytes), input NHWC float32 of ``shape`` (None:
    any), outputs in the network's order."""
    import tensorflow as tf
    import tf2onnx
    spec = [tf.TensorSpec(shape, tf.float32, name='image')]
    model, _ = tf2onnx.convert.from_function(tf.function(network, input_signature=spec),
                                             input_signature=spec, opset=OPSET)
    return model.SerializeToString()


def max_error(network, data, inputs):
    """Largest |ONNX - TensorFlow| over every output of ``network`` on each input batch."""
    import onnxruntime as ort
    session = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    worst = 0.0
    for batch in inputs:
        for want, got in zip(network(batch), session.run(None, {name: batch})):
            worst = max(worst, float(np.abs(np.asarray(want, np.float64) - got).max()))
    return worst


def convert(folder, limit):
    """Convert, check and store the three networks -> None, or the line saying why refused."""
    start = time.time()
    with tensorflow_start_filtered():
        from mtcnn import MTCNN
    version = mtcnn_files()[0]
    stages = dict(zip(NETWORKS, MTCNN().stages))  # P-Net, R-Net, O-Net, in that order
    models, errors = {}, {}
    for name in NETWORKS:
        network = stages[name].model
        models[name] = to_onnx(network, SIGNATURES[name])
        errors[name] = max_error(network, models[name], check_inputs(name))
    refused = [name for name in NETWORKS if not errors[name] <= limit]
    if refused:
        return ('the ONNX conversion of mtcnn %s differs from TensorFlow (%s; limit %.3g)'
                % (version, ', '.join('%s by %.3g' % (n, errors[n]) for n in refused), limit))
    entries = {name: store_file(folder, name, '.onnx', models[name]) for name in NETWORKS}
    write_record(os.path.join(folder, RECORD), {
        'mtcnn': version, 'models': entries, 'max_error_vs_tf': errors, 'limit': limit,
        'opset': OPSET, 'seconds': round(time.time() - start, 1)})
    kept = {entry['file'] for entry in entries.values()}
    tidy(folder, lambda name: name.endswith('.onnx') and name not in kept)
    return None


def main(argv=None):
    folder, limit = (sys.argv[1:] if argv is None else argv)
    refusal = convert(folder, float(limit))
    if refusal:
        print(refusal)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
