"""The int8 variant of a converted model: static quantization of the image encoder only,
calibrated on the repository's sample portrait (docs/formats.md §13). No TensorFlow."""
import os

import numpy as np

from util.model.onnx_backend import THETA

# only the convolutions theta depends on (the image encoder): quantizing the regressor's
# MatMul/Gemm as well added error and, in QDQ form, ran slower (measured, bench/)
QUANTIZED_OPS = ('Conv',)
CALIBRATION_VARIANTS = 8


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
