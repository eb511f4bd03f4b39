"""Network backends: the interface the pipeline relies on, and the one place that picks one.

A backend is any object with
- ``predict(images, get_parameters=True)``: images (N, S, S, 3) float32 in [-1, 1] ->
  (vertices (N, V, 3) float32, theta (N, T) float32) (the original RingNet_inference
  signature; the pipeline always asks for both);
- plain ints ``image_size`` (S, or None when the graph does not fix it), ``n_theta`` (T)
  and ``n_vertices`` (V).

Two exist: run_RingNet.RingNet_inference (the checkpoint on TensorFlow) and
util.onnx_backend.OnnxBackend (a verified ONNX conversion of it on ONNX Runtime, converted once
per checkpoint into the user cache; docs/formats.md §13). A run that finds a verified
conversion in the cache never imports TensorFlow.
"""
import contextlib
import json
import os
import hashlib
import sys
import tempfile
import types

from util.io.atomic import atomic_path
from util.io.cache import default_cache_dir, files_digest, sha256_file
from util.io.checkpoint_files import data_shards, resolve_prefix
from util.onnx_backend import OnnxBackend, OnnxModelError

BACKENDS = ('auto', 'tf', 'onnx')
PRECISIONS = ('fp32', 'int8')
# a conversion must reproduce the TF graph this closely, or it is refused (TF is used)
FP32_LIMITS = {'theta_max': 1e-4, 'vertices_max_m': 1e-5}
INT8_MAX_VERTEX_MM = 2.0  # int8 is refused (fp32 ONNX used) when vertices move more
SAMPLE_IMAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'input_images', '000001.jpg')


def load_backend(load_path, batch_size=1, backend='tf', precision='fp32', cache_dir=None,
                 say=None, int8_max_mm=INT8_MAX_VERTEX_MM):
    """The network for the checkpoint at ``load_path`` (prefix or folder).

    backend: 'tf' (TensorFlow), 'onnx' (ONNX Runtime; converts and verifies on first use) or
    'auto' (ONNX when a verified conversion of this checkpoint is cached, TensorFlow
    otherwise: auto never converts by itself, so outputs change from TensorFlow's only after
    an explicit --backend=onnx). precision 'int8' (ONNX only, converted on first use)
    quantizes the image encoder. ``say`` (default: print to stderr) gets the one-line
    notices: converting, conversion refused, int8 errors.
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    if backend not in BACKENDS or precision not in PRECISIONS:
        raise ValueError('--backend must be one of %s and --precision one of %s'
                         % ('|'.join(BACKENDS), '|'.join(PRECISIONS)))
    if backend == 'tf':
        if precision != 'fp32':
            raise ValueError('--precision=%s needs --backend=onnx (or auto)' % precision)
        return tf_backend(load_path, batch_size)
    entry = ConversionCache(load_path, cache_dir)
    cached = entry.model(precision)
    if cached is not None:
        return cached
    if backend == 'auto' and precision == 'fp32':
        return tf_backend(load_path, batch_size)
    return entry.convert(precision, tf_backend(load_path, batch_size), say, int8_max_mm)


def tf_backend(load_path, batch_size=1):
    """RingNet_inference on TensorFlow (imported here, only when this backend is used)."""
    from run_RingNet import RingNet_inference
    return RingNet_inference(types.SimpleNamespace(load_path=load_path, batch_size=batch_size))


def checkpoint_paths(load_path):
    """The files a conversion depends on: .meta, .index and the data shards."""
    prefix = resolve_prefix(load_path)
    return [prefix + '.meta', prefix + '.index'] + data_shards(prefix)


class ConversionCache:
    """The cache entry of one checkpoint: CACHE/onnx/<sha256 of the checkpoint files>/.

    For each precision a record PRECISION.json names the model file (its name holds the
    model's own sha256, so concurrent writers never overwrite each other's file) and holds
    the measured errors; the record is written last, atomically, and a model whose bytes do
    not match it is ignored (and converted again).
    """

    def __init__(self, load_path, cache_dir=None):
        self.load_path = load_path
        root = os.path.join(cache_dir or default_cache_dir(), 'onnx')
        os.makedirs(root, exist_ok=True)
        self.folder = os.path.join(root, files_digest(checkpoint_paths(load_path), root))

    def record(self, precision):
        """The record of ``precision`` (dict), or None when absent or unreadable."""
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(self.folder, precision + '.json'), encoding='utf-8') as fh:
                record = json.load(fh)
            return record if isinstance(record, dict) else None
        return None

    def model(self, precision):
        """OnnxBackend of a verified, intact cached model of ``precision``, else None.

        A refused int8 conversion gives the fp32 model (the refusal is remembered)."""
        record = self.record(precision)
        if record is None:
            return None
        if record.get('refused'):
            return self.model('fp32') if precision == 'int8' else None
        path = os.path.join(self.folder, str(record.get('file', '')))
        if not os.path.isfile(path) or sha256_file(path) != record.get('sha256'):
            return None
        try:
            return OnnxBackend(path)
        except OnnxModelError:
            return None

    def _store(self, precision, data, record):
        """Write model bytes and then its record; -> the model's path."""
        os.makedirs(self.folder, exist_ok=True)
        sha = hashlib.sha256(data).hexdigest()
        name = '%s-%s.onnx' % (precision, sha[:16])
        path = os.path.join(self.folder, name)
        with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
            fh.write(data)
        self._write_record(precision, dict(record, file=name, sha256=sha))
        return path

    def _write_record(self, precision, record):
        with atomic_path(os.path.join(self.folder, precision + '.json')) as tmp, \
                open(tmp, 'w', encoding='utf-8') as fh:
            json.dump(record, fh, indent=1)

    def convert(self, precision, net, say, int8_max_mm=INT8_MAX_VERTEX_MM):
        """Convert (and for int8 quantize) ``net``, verify, cache -> the backend to use:
        ONNX if verified, else ``net`` (TensorFlow) with a one-line notice."""
        from util import onnx_convert
        fp32 = self.model('fp32')
        if fp32 is None:
            say('converting the checkpoint for ONNX Runtime, once (about 40 s); later runs load '
                'it from %s without TensorFlow' % self.folder)
            data = onnx_convert.to_onnx(net)
            with _scratch(self.folder, data) as path:
                errors = onnx_convert.compare(net, OnnxBackend(path),
                                              onnx_convert.check_images())
            bad = {k: v for k, v in errors.items() if k in FP32_LIMITS and v > FP32_LIMITS[k]}
            if bad:
                say('error: %s: the ONNX conversion differs from TensorFlow (%s); refused, '
                    'running on TensorFlow' % (self.load_path, _errors_text(errors)))
                return net
            fp32 = OnnxBackend(self._store('fp32', data, {'errors_vs_tf': errors}))
        if precision == 'fp32':
            return fp32
        return self._int8(fp32, say, int8_max_mm)

    def _int8(self, fp32, say, max_mm):
        from util import onnx_convert
        record = self.record('fp32')
        fp32_path = os.path.join(self.folder, record['file'])
        calibration = onnx_convert.calibration_images(SAMPLE_IMAGE)
        say('quantizing the image encoder to int8, once (calibrated on %d variants of %s)'
            % (len(calibration), os.path.relpath(SAMPLE_IMAGE)))
        with _scratch(self.folder, b'') as out:
            onnx_convert.quantize_encoder(fp32_path, out, calibration)
            int8 = OnnxBackend(out)
            errors = onnx_convert.compare(fp32, int8, calibration)
            with open(out, 'rb') as fh:
                data = fh.read()
        say('int8 vs fp32 on the calibration images: %s' % _errors_text(errors))
        if errors['vertices_max_m'] * 1e3 > max_mm:
            say('error: int8 moves vertices by %.2f mm (limit %.1f mm): refused, running '
                'ONNX fp32' % (errors['vertices_max_m'] * 1e3, max_mm))
            self._write_record('int8', {'refused': True, 'errors_vs_fp32': errors,
                                        'limit_mm': max_mm})
            return fp32
        return OnnxBackend(self._store('int8', data, {'errors_vs_fp32': errors,
                                                      'limit_mm': max_mm}))


@contextlib.contextmanager
def _scratch(folder, data):
    """A private temporary file in ``folder`` holding ``data``, removed afterwards."""
    os.makedirs(folder, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix='.onnx', prefix='.scratch-', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _errors_text(errors):
    return 'theta max %.2g, vertices max %.3f mm, mean %.3f mm' % (
        errors['theta_max'], errors['vertices_max_m'] * 1e3, errors['vertices_mean_m'] * 1e3)
