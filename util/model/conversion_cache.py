"""The cache of verified ONNX conversions: one entry per checkpoint, and the acceptance policy
(fp32 within FP32_LIMITS of TensorFlow, int8 within INT8_MAX_VERTEX_MM of fp32;
docs/formats.md §13).
"""
import contextlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from util import ROOT
from util.errors import one_line
from util.io.cache import (default_cache_dir, files_digest, intact_path, move_file,
                           read_record, tidy, write_record)
from util.io.checkpoint_files import checkpoint_paths
from util.io.lock import locked
from util.model.onnx_backend import OnnxBackend, OnnxModelError
from util.model.onnx_check import BATCH_THETA_MAX, batch_errors, compare

# a conversion must reproduce the TF graph this closely, or it is refused (TF is used)
FP32_LIMITS = {'theta_max': 1e-4, 'vertices_max_m': 1e-5}
INT8_MAX_VERTEX_MM = 2.0  # int8 is refused (fp32 ONNX used) when vertices move more
CONVERSION_SECONDS = 10  # what the one-time conversion takes on a 2-core machine (bench/)
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

    def model_file(self, precision):
        """(path, record) of the verified, intact cached model of ``precision``, else None.
        A refused int8 conversion gives the fp32 model (the refusal is remembered)."""
        record = self.record(precision)
        if record is None:
            return None
        if record.get('refused'):
            return self.model_file('fp32') if precision == 'int8' else None
        path = intact_path(self.folder, record)
        if path is None:
            return None
        return path, dict(record, precision=record.get('precision', precision))

    def model(self, precision):
        """model_file() as an OnnxBackend (onnx_backend_of), else None."""
        found = self.model_file(precision)
        try:
            return onnx_backend_of(*found) if found else None
        except OnnxModelError:
            return None

    def _store(self, precision, scratch, record):
        """Move the model file ``scratch`` into the entry, then write its record; remove the
        superseded models -> the backend."""
        entry = move_file(self.folder, precision, '.onnx', scratch)
        write_record(self._record_path(precision), dict(record, precision=precision, **entry))
        # under the entry's lock: the superseded models of this precision go
        tidy(self.folder, lambda other: other.startswith(precision + '-')
             and other.endswith('.onnx') and other != entry['file'])
        return self.model(precision)

    def ensure(self, precision, say, int8_max_mm=INT8_MAX_VERTEX_MM):
        """model_file(), converting (and for int8 quantizing) and verifying first when the
        cache lacks it -> (path, record), or None after a one-line notice when ONNX Runtime
        cannot be used (refused, or any failure). TensorFlow runs in a child process only."""
        try:
            # one converter per checkpoint at a time: a second process waits, then finds the
            # first one's model in the cache
            os.makedirs(self.folder, exist_ok=True)
            with locked(os.path.join(self.folder, '.lock')):
                found = self.model_file(precision)
                if found is None and (self.model('fp32') or self._convert_fp32(say)):
                    if precision == 'int8':
                        self._int8(self.model('fp32'), say, int8_max_mm)
                    found = self.model_file(precision)
                return found
        except Exception as exc:  # noqa: BLE001 - a failed conversion must not stop the run
            say('error: %s: the ONNX conversion failed (%s); running on TensorFlow'
                % (self.load_path, one_line(exc, with_type=True)))
            return None

    def _convert_fp32(self, say):
        """The checked fp32 model, cached -> OnnxBackend, or None when it is refused."""
        say('converting the checkpoint for ONNX Runtime, once (about %d s): later runs start '
            'in a second, without TensorFlow (cache: %s)' % (CONVERSION_SECONDS, self.folder))
        with _scratch(self.folder) as path:
            return self.adopt(path, run_converter(self.load_path, path), say)

    def adopt(self, path, record, say):
        """Cache the fp32 conversion at ``path`` (moved) with its ``record``
        (util.model.onnx_convert.convert_checked) if within FP32_LIMITS of TensorFlow ->
        OnnxBackend, or None when it is refused (one line)."""
        errors = record['errors_vs_tf']
        if not _within(errors, FP32_LIMITS):
            say('error: %s: the ONNX conversion differs from TensorFlow (%s); refused, '
                'running on TensorFlow' % (self.load_path, _errors_text(errors)))
            return None
        if record['batch'] != 'free':
            say('note: %s: the converted graph keeps batch size 1 (%s); --batch_size runs '
                'image by image' % (self.load_path, record.get('batch_error') or
                                    'a batch differed from single images'))
        os.makedirs(self.folder, exist_ok=True)
        return self._store('fp32', path, record)

    def _int8(self, fp32, say, max_mm):
        from util.model import onnx_quantize
        calibration = onnx_quantize.calibration_images(SAMPLE_IMAGE)
        say('quantizing the image encoder to int8, once (calibrated on %d variants of %s)'
            % (len(calibration), os.path.relpath(SAMPLE_IMAGE)))
        with _scratch(self.folder) as out:
            onnx_quantize.quantize_encoder(fp32.path, out, calibration)
            int8 = OnnxBackend(out)
            errors = compare(fp32, int8, calibration)
            batch = _batch_kind(int8, calibration) if fp32.fixed_batch is None else 'fixed'
            say('int8 vs fp32 on the calibration images: %s' % _errors_text(errors))
            if not _within(errors, {'vertices_max_m': max_mm / 1e3, 'theta_max': np.inf}):
                say('error: int8 moves vertices by %.2f mm (limit %.1f mm): refused, running '
                    'ONNX fp32' % (errors['vertices_max_m'] * 1e3, max_mm))
                write_record(self._record_path('int8'), {
                    'refused': True, 'errors_vs_fp32': errors, 'limit_mm': max_mm})
                return fp32
            return self._store('int8', out, {'errors_vs_fp32': errors, 'limit_mm': max_mm,
                                             'batch': batch})


def onnx_backend_of(path, record):
    """The OnnxBackend of a cached model file and its record: labelled with its precision,
    run image by image unless its batch was verified."""
    return OnnxBackend(path, label='ONNX Runtime %s' % record.get('precision', 'fp32'),
                       one_by_one=record.get('batch') != 'free')


def _batch_kind(backend, images):
    """'free' when ``backend`` gives ``images`` as a batch what it gives them one by one
    (theta within BATCH_THETA_MAX), else 'fixed' (it is then run image by image)."""
    try:
        return 'free' if batch_errors(backend, images)['theta_max'] <= BATCH_THETA_MAX else 'fixed'
    except Exception:  # noqa: BLE001 - onnxruntime's own errors: the batch does not run
        return 'fixed'


def run_converter(load_path, path):
    """util.model.onnx_convert in a child process: TensorFlow is imported there, and its memory
    goes when it ends -> its record (dict). Raises RuntimeError with the child's last line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run([sys.executable, '-m', 'util.model.onnx_convert', load_path, path],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    said = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode < 0:
        raise RuntimeError('the converter was stopped by signal %d%s' % (
            -proc.returncode, ' (out of memory?)' if -proc.returncode == 9 else ''))
    raise RuntimeError(said[-1] if said else 'the converter exited with status %d'
                       % proc.returncode)


@contextlib.contextmanager
def _scratch(folder):
    """The path of a private temporary file in ``folder``, removed afterwards unless moved."""
    fd, path = tempfile.mkstemp(suffix='.onnx', prefix='.scratch-', dir=folder)
    os.close(fd)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        with contextlib.suppress(OSError):
            os.remove(path + '.prepared.onnx')


def _errors_text(errors):
    return 'theta max %.2g, vertices max %.3f mm, mean %.3f mm' % (
        errors['theta_max'], errors['vertices_max_m'] * 1e3, errors['vertices_mean_m'] * 1e3)
