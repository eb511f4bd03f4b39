"""Convert the checkpoint's output sub-graph to ONNX, check it against TensorFlow, and make the
int8 variant (docs/formats.md §13). TensorFlow, tf2onnx and onnx are imported here only.

The TF graph (util.model.tf_backend.RingNet_inference, variables restored) is frozen into constants,
converted by tf2onnx with its outputs renamed ``theta`` and ``vertices``, and compared with the
TF graph on fixed inputs. int8 quantizes only the operations that compute theta from the image;
every operation that maps theta to the vertices (the FLAME decoder) stays float32.
"""
import logging
import os

import numpy as np

from util.model.tf_backend import THETA_OP, VERTS_OP
from util.model.onnx_backend import THETA, VERTICES

OPSET = 17
# only the convolutions theta depends on (the image encoder): quantizing the regressor's
# MatMul/Gemm as well added error and, in QDQ form, ran slower (measured, bench/)
QUANTIZED_OPS = ('Conv',)
CALIBRATION_VARIANTS = 8


def frozen_graph_def(net):
    """GraphDef of ``net``'s output sub-graph with its variables as constants."""
    import tensorflow as tf
    return tf.compat.v1.graph_util.convert_variables_to_constants(
        net.sess, net.sess.graph.as_graph_def(), [THETA_OP, VERTS_OP])


def to_onnx(net):
    """RingNet_inference -> serialized ONNX model (bytes), outputs ``theta``, ``vertices``."""
    import tensorflow as tf
    import tf2onnx
    # TF's deprecation notices for the TF1 freezing API and tf2onnx's progress lines are not
    # for the user: the one-line notice of util.model.backend says what happens
    loggers = [tf.get_logger(), logging.getLogger('tf2onnx')]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            frozen_graph_def(net), input_names=[net.images.name],
            output_names=[THETA_OP + ':0', VERTS_OP + ':0'], opset=OPSET,
            tensors_to_rename={THETA_OP + ':0': THETA, VERTS_OP + ':0': VERTICES})
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return model.SerializeToString()


def check_images(size=224, count=4, seed=0):
    """(count, size, size, 3) float32 in [-1, 1]: fixed inputs for comparing two backends:
    zeros, uniform noise, and smooth gradients (fixed seed; no file needed)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    images = [np.zeros((size, size, 3), np.float32),
              rng.uniform(-1, 1, (size, size, 3)).astype(np.float32)]
    for k in range(count - 2):
        phase = rng.uniform(0, np.pi, 3)
        grid = np.sin(3 * ramp[:, None, None] + 2 * ramp[None, :, None] + phase) * 0.9
        images.append(grid.astype(np.float32))
    return np.stack(images[:count])


def compare(reference, candidate, images):
    """Errors of backend ``candidate`` against ``reference`` on ``images`` -> dict
    theta_max (abs), vertices_max_m, vertices_mean_m (Euclidean distance per vertex)."""
    ref_v, ref_t = reference.predict(images, get_parameters=True)
    got_v, got_t = candidate.predict(images, get_parameters=True)
    dist = np.linalg.norm(got_v.astype(np.float64) - ref_v, axis=-1)
    return {'theta_max': float(np.abs(got_t.astype(np.float64) - ref_t).max()),
            'vertices_max_m': float(dist.max()), 'vertices_mean_m': float(dist.mean())}


def theta_ancestors(model):
    """Names of the ONNX nodes ``theta`` depends on (what computes theta from the image)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    seen, todo = set(), [THETA]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and node.name not in seen:
            seen.add(node.name)
            todo.extend(node.input)
    return seen


class _Feed:
    """onnxruntime.quantization CalibrationDataReader over an image array."""

    def __init__(self, name, images):
        self._items = iter([{name: image[None]} for image in images])

    def get_next(self):
        return next(self._items, None)


def calibration_images(path, size=224, count=CALIBRATION_VARIANTS):
    """(count, size, size, 3) float32 crops of the image at ``path`` (the repository's
    public-domain sample): plain and mirrored, cropped a little tighter each time, and with
    the contrast lowered by 0-10 % toward mid-grey, through the original's preprocessing."""
    from util.io.image_io import load_image
    from util.face.preprocess import preprocess_image
    image = load_image(path)
    crops = []
    for k in range(count):
        view = image if k % 2 == 0 else image[:, ::-1]
        h, w = view.shape[:2]
        cut = 6 * k
        crop, _ = preprocess_image(np.ascontiguousarray(view[cut:h - cut // 2, cut // 2:w - cut]),
                                   size)
        crops.append(crop * (1 - 0.05 * (k % 3)))
    return np.stack(crops).astype(np.float32)


def quantize_encoder(fp32_path, out_path, calibration):
    """Static int8 (QDQ, per-channel weights) of the QUANTIZED_OPS nodes that compute theta;
    the FLAME decoder stays float32. calibration: (N, S, S, 3) float32 images -> number of
    nodes quantized."""
    from onnxruntime.quantization.shape_inference import quant_pre_process
    # fold batch norms into the convolutions first: otherwise they stay separate float ops
    # between quantized convolutions (measured: 25.9 -> 23.2 ms per image)
    prepared = out_path + '.prepared.onnx'
    quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
    try:
        return _quantize(prepared, out_path, calibration)
    finally:
        if os.path.exists(prepared):
            os.remove(prepared)


def _quantize(fp32_path, out_path, calibration):
    """quantize_encoder on a prepared model."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    model = onnx.load(fp32_path)
    encoder = theta_ancestors(model)
    nodes = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name in encoder]
    feed = type('Feed', (_Feed, CalibrationDataReader), {})(model.graph.input[0].name,
                                                            calibration)
    quantize_static(fp32_path, out_path, feed, quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                    # onnxruntime 1.32 fails in this optional bias-scale adjustment on Gemm
                    extra_options={'QDQDisableWeightAdjustForInt32Bias': True})
    return len(nodes)
