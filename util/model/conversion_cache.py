"""The cache of verified ONNX conversions: one entry per checkpoint, and the acceptance policy
(fp32 within FP32_LIMITS of TensorFlow, int8 within INT8_MAX_VERTEX_MM of fp32;
docs/formats.md §13).
"""
import contextlib
import os
import tempfile

import numpy as np

from util import ROOT
from util.errors import one_line
from util.io.cache import (default_cache_dir, files_digest, intact_path, read_record, store_file,
                           tidy, write_record)
from util.io.checkpoint_files import checkpoint_paths
from util.io.lock import locked
from util.model.onnx_backend import OnnxBackend, OnnxModelError

# a conversion must reproduce the TF graph this closely, or it is refused (TF is used)
FP32_LIMITS = {'theta_max': 1e-4, 'vertices_max_m': 1e-5}
INT8_MAX_VERTEX_MM = 2.0  # int8 is refused (fp32 ONNX used) when vertices move more
# calibration and check images for int8 (variants of the bundled sample portrait)
SAMPLE_IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')


def _within(errors, limits):
    """True when every limited error is a number at most its limit (NaN fails)."""
    return all(np.isfinite(errors[k]) and errors[k] <= limit for k, limit in limits.items())


class ConversionCache:
    """The cache entry of one checkpoint: CACHE/onnx/<sha256 of the checkpoint files>/.

    For each precision a record PRECISION.json names the model file (its name holds the
    model's own sha256, so concurrent writers never overwrite each other's file) and holds
    the measured errors; the record is written last, atomically, and a model whose bytes do
    not match it is ignored (and converted again by a run that converts). Creating the object
    writes nothing (a read-only cache still serves its models).
    """

    def __init__(self, load_path, cache_dir=None):
        self.load_path = load_path
        root = os.path.join(cache_dir or default_cache_dir(), 'onnx')
        self.folder = os.path.join(root, files_digest(checkpoint_paths(load_path), root))

    def record(self, precision):
        """The record of ``precision`` (dict), or None when absent or unreadable."""
        return read_record(self._record_path(precision))

    def _record_path(self, precision):
        return os.path.join(self.folder, precision + '.json')

    def model(self, precision):
        """OnnxBackend of a verified, intact cached model of ``precision``, else None.

        A refused int8 conversion gives the fp32 model (the refusal is remembered)."""
        record = self.record(precision)
        if record is None:
            return None
        if record.get('refused'):
            return self.model('fp32') if precision == 'int8' else None
        path = intact_path(self.folder, record)
        if path is None:
            return None
        try:
            return OnnxBackend(path)
        except OnnxModelError:
            return None

    def _store(self, precision, data, record):
        """Write model bytes and then its record; remove the superseded models -> the path."""
        entry = store_file(self.folder, precision, '.onnx', data)
        write_record(self._record_path(precision), dict(record, **entry))
        tidy(self.folder, lambda name: name.startswith(precision + '-')
             and name.endswith('.onnx') and name != entry['file'])
        return os.path.join(self.folder, entry['file'])

    def convert(self, precision, make_net, say, int8_max_mm=INT8_MAX_VERTEX_MM):
        """Convert (and for int8 quantize), verify, cache -> the backend to use: ONNX if
        verified, else TensorFlow (``make_net()``) after a one-line notice."""
        net = None
        try:
            # one converter per checkpoint at a time: a second process waits, then finds the
            # first one's model in the cache
            with locked(os.path.join(self.folder, '.lock')):
                cached = self.model(precision)
                if cached is not None:
                    return cached
                fp32 = self.model('fp32')
                if fp32 is None:
                    net = make_net()
                    fp32 = self._convert_fp32(net, say)
                    if fp32 is None:
                        return net
                return fp32 if precision == 'fp32' else self._int8(fp32, say, int8_max_mm)
        except Exception as exc:  # noqa: BLE001 - a failed conversion must not stop the run
            say('error: %s: the ONNX conversion failed (%s); running on TensorFlow'
                % (self.load_path, one_line(exc, with_type=True)))
            return net if net is not None else make_net()

    def _convert_fp32(self, net, say):
        """The checked fp32 model, cached -> OnnxBackend, or None when it is refused."""
        from util.model import onnx_convert
        say('converting the checkpoint for ONNX Runtime, once (about 40 s); later runs load it '
            'from %s without TensorFlow' % self.folder)
        data = onnx_convert.to_onnx(net)
        with _scratch(self.folder, data) as path:
            errors = onnx_convert.compare(net, OnnxBackend(path), onnx_convert.check_images())
        if not _within(errors, FP32_LIMITS):
            say('error: %s: the ONNX conversion differs from TensorFlow (%s); refused, '
                'running on TensorFlow' % (self.load_path, _errors_text(errors)))
            return None
        return OnnxBackend(self._store('fp32', data, {'errors_vs_tf': errors}))

    def _int8(self, fp32, say, max_mm):
        from util.model import onnx_convert
        calibration = onnx_convert.calibration_images(SAMPLE_IMAGE)
        say('quantizing the image encoder to int8, once (calibrated on %d variants of %s)'
            % (len(calibration), os.path.relpath(SAMPLE_IMAGE)))
        with _scratch(self.folder, b'') as out:
            onnx_convert.quantize_encoder(fp32.path, out, calibration)
            int8 = OnnxBackend(out)
            errors = onnx_convert.compare(fp32, int8, calibration)
            with open(out, 'rb') as fh:
                data = fh.read()
        say('int8 vs fp32 on the calibration images: %s' % _errors_text(errors))
        if not _within(errors, {'vertices_max_m': max_mm / 1e3, 'theta_max': np.inf}):
            say('error: int8 moves vertices by %.2f mm (limit %.1f mm): refused, running '
                'ONNX fp32' % (errors['vertices_max_m'] * 1e3, max_mm))
            write_record(self._record_path('int8'), {'refused': True, 'errors_vs_fp32': errors,
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
        with contextlib.suppress(OSError):
            os.remove(path + '.prepared.onnx')


def _errors_text(errors):
    return 'theta max %.2g, vertices max %.3f mm, mean %.3f mm' % (
        errors['theta_max'], errors['vertices_max_m'] * 1e3, errors['vertices_mean_m'] * 1e3)
