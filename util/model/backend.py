"""The network: the backend interface the pipeline relies on, and the one place that picks one.

A backend is any object with
- ``predict(images, get_parameters=True)``: images (N, S, S, 3) float32 in [-1, 1] ->
  (vertices (N, V, 3) float32, theta (N, T) float32) (the original RingNet_inference
  signature; the pipeline always asks for both);
- plain ints ``image_size`` (S, or None when the graph does not fix it), ``n_theta`` (T)
  and ``n_vertices`` (V).

Two exist: util.model.tf_backend.RingNet_inference (the checkpoint on TensorFlow) and
util.model.onnx_backend.OnnxBackend (a verified ONNX conversion of it on ONNX Runtime,
converted once per checkpoint into the user cache by util.model.conversion_cache;
docs/formats.md §13). A run that finds a verified conversion in the cache never imports
TensorFlow.
"""
import sys

from util.errors import is_out_of_memory, one_line, out_of_memory
from util.model.choices import check_choice
from util.model.conversion_cache import INT8_MAX_VERTEX_MM, ConversionCache


def load_backend(load_path, batch_size=1, backend='tf', precision='fp32', cache_dir=None,
                 say=None, int8_max_mm=INT8_MAX_VERTEX_MM):
    """The network for the checkpoint at ``load_path`` (prefix or folder).

    backend: 'tf' (TensorFlow), 'onnx' (ONNX Runtime; converts and verifies on first use) or
    'auto' (ONNX when a verified conversion of this checkpoint is cached, TensorFlow
    otherwise: auto does not convert for fp32, so outputs change from TensorFlow's only after
    --backend=onnx or --precision=int8 was asked for). precision 'int8' (ONNX only, converted
    on first use) quantizes the image encoder. ``say`` (default: print to stderr) gets the
    one-line notices: converting, conversion refused or failed, int8 errors. Any failure of
    the ONNX side (cache folder not writable, onnxruntime / tf2onnx missing, a conversion that
    fails or differs) is one notice, and TensorFlow runs.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    check_choice(backend, precision)
    if backend == 'tf':
        return tf_backend(load_path, batch_size)
    try:
        entry = ConversionCache(load_path, cache_dir)
        cached = entry.model(precision)
    except Exception as exc:  # noqa: BLE001 - no usable cache: the run goes on, on TF
        if backend == 'onnx' or precision != 'fp32':
            say('error: ONNX Runtime cannot be used (%s); running on TensorFlow' % one_line(exc, with_type=True))
        return tf_backend(load_path, batch_size)
    if cached is not None:
        return cached
    if backend == 'auto' and precision == 'fp32':
        return tf_backend(load_path, batch_size)
    return entry.convert(precision, lambda: tf_backend(load_path, batch_size), say,
                         int8_max_mm)


def tf_backend(load_path, batch_size=1):
    """RingNet_inference on TensorFlow (imported here, only when this backend is used).
    TensorFlow that cannot load is one line: util.errors.OutOfMemory when memory ran out
    (its libraries could not be mapped), else ImportError saying what to install."""
    try:
        from util.model.tf_backend import RingNet_inference
    except (ImportError, MemoryError) as exc:
        if is_out_of_memory(exc):
            raise out_of_memory('TensorFlow', 'loading it', exc) from None
        raise ImportError('TensorFlow cannot be imported (%s): pip install -r requirements.txt'
                          % one_line(exc, last=True)) from None
    return RingNet_inference.from_checkpoint(load_path, batch_size)
