"""The network: the backend interface the pipeline relies on, and the one place that picks one.

A backend is any object with
- ``predict(images, get_parameters=True)``: images (N, S, S, 3) float32 in [-1, 1] ->
  (vertices (N, V, 3) float32, theta (N, T) float32) (the original RingNet_inference
  signature; the pipeline always asks for both);
- plain ints ``image_size`` (S, or None when the graph does not fix it), ``n_theta`` (T)
  and ``n_vertices`` (V).

- ``label``: what the run's summary line calls it ('TensorFlow', 'ONNX Runtime fp32', ...).

Two exist: util.model.tf_backend.RingNet_inference (the checkpoint on TensorFlow) and
util.model.onnx_backend.OnnxBackend (a verified ONNX conversion of it on ONNX Runtime,
converted once per checkpoint into the user cache by util.model.conversion_cache;
docs/formats.md §13). A run that finds a verified conversion in the cache never imports
TensorFlow.
"""
import sys

from util.errors import is_out_of_memory, one_line, out_of_memory
from util.model.choices import check_choice
from util.model.conversion_cache import INT8_MAX_VERTEX_MM, ConversionCache, onnx_backend_of
from util.model.onnx_backend import OnnxModelError


def load_backend(load_path, batch_size=1, backend='tf', precision='fp32', cache_dir=None,
                 say=None, int8_max_mm=INT8_MAX_VERTEX_MM):
    """The network for the checkpoint at ``load_path`` (prefix or folder).

    backend: 'tf' (TensorFlow, the reference), or 'auto' / 'onnx' (the same; ONNX Runtime: the
    checkpoint is converted once, in a child process, and verified against TensorFlow before
    it is used; later runs load the cached conversion without TensorFlow). precision 'int8'
    (ONNX only, converted on first use) quantizes the image encoder. ``say`` (default: print to stderr) gets the one-line notices: converting,
    conversion refused or failed, int8 errors, a --batch_size the network cannot use. Any
    failure of the ONNX side (cache folder not writable, onnxruntime / tf2onnx missing, a
    conversion that fails or differs) is one notice, and TensorFlow runs.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    found = backend_model_file(load_path, backend, precision, cache_dir, say, int8_max_mm)
    if found is not None:
        try:
            return _batch_noted(onnx_backend_of(*found), batch_size, say)
        except OnnxModelError as exc:  # e.g. an onnxruntime too old for the cached model
            say('error: %s; running on TensorFlow' % exc)
    return _batch_noted(tf_backend(load_path, batch_size), batch_size, say)


def backend_model_file(load_path, backend='auto', precision='fp32', cache_dir=None, say=None,
                       int8_max_mm=INT8_MAX_VERTEX_MM):
    """The verified ONNX model a run of ``backend`` and ``precision`` uses (converted first
    when not cached: TensorFlow runs in a child process) -> (path, record), or None when the
    run uses TensorFlow (--backend=tf, or after a one-line notice on ``say``). What
    --engine=ray's driver ships to its workers."""
    say = say or (lambda line: print(line, file=sys.stderr))
    check_choice(backend, precision)
    if backend == 'tf':
        return None
    try:
        entry = ConversionCache(load_path, cache_dir)
        # a read-only cache still serves its models: look before taking the lock
        return entry.model_file(precision) or entry.ensure(precision, say, int8_max_mm)
    except Exception as exc:  # noqa: BLE001 - no usable cache: the run goes on, on TF
        say('error: ONNX Runtime cannot be used (%s); running on TensorFlow'
            % one_line(exc, with_type=True))
        return None


def _batch_noted(backend, batch_size, say):
    """``backend``, after a note when it runs image by image although --batch_size asks for
    more (the TensorFlow graph has batch 1 built in)."""
    if batch_size > 1 and getattr(backend, 'fixed_batch', None) == 1:
        say('note: --batch_size %d: %s takes one image at a time here; running image by image'
            % (batch_size, backend.label))
    return backend


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
