"""RingNet on ONNX Runtime: the backend interface (util/model/backend.py) without TensorFlow.

The model is a conversion of the checkpoint's output sub-graph (util/model/onnx_convert.py,
docs/formats.md §13) whose outputs are named ``theta`` (N, T) and ``vertices`` (N, V, 3) and
whose one input is the image batch (N, S, S, 3) float32 in [-1, 1]. When the batch dimension is
fixed (the original graph's is 1), images run one chunk at a time, the last padded and trimmed.
"""
import numpy as np

from util.errors import one_line

THETA = 'theta'
VERTICES = 'vertices'


class OnnxModelError(ValueError):
    """The ONNX file cannot be loaded or is not a RingNet conversion; the message names it."""


def _dim(value):
    """An ONNX Runtime shape entry -> int, or None when symbolic/unknown."""
    return value if isinstance(value, int) else None


class OnnxBackend:
    """path: a .onnx file written by util.model.onnx_convert; threads: intra-op threads (0: ORT's
    default, one per physical core); providers: ONNX Runtime execution providers, best first
    (default: CUDA when this onnxruntime build has it, then CPU); label: what the run's summary
    calls it; one_by_one: run image by image even if the batch dimension is free (a batch
    that was not verified)."""

    def __init__(self, path, threads=0, providers=None, label='ONNX Runtime', one_by_one=False):
        import onnxruntime as ort  # only this backend needs it
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        # idle ONNX Runtime threads spin by default, taking the cores from the writer thread
        # that renders the previous image meanwhile: off, the whole demo runs 52 -> 42 ms per
        # image on two cores (network alone +2 ms; bench/bench_convert.py)
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ('CUDAExecutionProvider', 'CPUExecutionProvider')
                         if p in available]
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise OnnxModelError('%s: cannot load the ONNX model (%s)'
                                 % (path, one_line(exc, last=True))) from exc
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        inputs = self.session.get_inputs()
        if set(outputs) != {THETA, VERTICES} or len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise OnnxModelError('%s: not a RingNet conversion (outputs %s, %d inputs)'
                                 % (path, sorted(outputs), len(inputs)))
        self.input_name = inputs[0].name
        batch, height, width, _ = (_dim(d) for d in inputs[0].shape)
        self.fixed_batch = 1 if one_by_one else batch
        self.image_size = height if height is not None and height == width else None
        self.n_theta = int(outputs[THETA][-1])
        self.n_vertices = int(outputs[VERTICES][1])
        self.providers = self.session.get_providers()
        self.path = path
        self.label = label + (' CUDA' if self.providers[0] == 'CUDAExecutionProvider' else '')

    def predict(self, images, get_parameters=True):
        """images (N, S, S, 3) float in [-1, 1] -> (vertices (N, V, 3) float32, theta (N, T)
        float32), or vertices alone without get_parameters (RingNet_inference's signature)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError('expected images of shape (N, S, S, 3), got %s' % (images.shape,))
        step = self.fixed_batch or max(1, len(images))
        verts, thetas = [], []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            n = len(chunk)
            if self.fixed_batch and n < self.fixed_batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.fixed_batch - n, 0)])
            theta, vertices = self.session.run([THETA, VERTICES], {self.input_name: chunk})
            verts.append(vertices[:n])
            thetas.append(theta[:n])
        if not verts:
            verts = [np.zeros((0, self.n_vertices, 3), np.float32)]
            thetas = [np.zeros((0, self.n_theta), np.float32)]
        vertices = np.concatenate(verts).astype(np.float32, copy=False)
        if get_parameters:
            return vertices, np.concatenate(thetas).astype(np.float32, copy=False)
        return vertices
