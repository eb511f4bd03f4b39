"""mtcnn's three networks converted to ONNX, verified, in the user cache (docs/formats.md §13a):
CACHE/mtcnn/<key>/, key = sha256 of mtcnn's installed version and its shipped weight files.

The entry's record detector.json names each network's model file (its name holds its sha256)
and is written last, atomically, by util.face.detector_convert, which runs in a child process
so that TensorFlow never loads into this one. A model whose bytes do not match the record is
never run: the entry counts as missing and is converted again. Nothing here imports
TensorFlow or mtcnn (mtcnn is found, not imported: importing it loads TensorFlow).
"""
import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

from util import ROOT
from util.errors import one_line
from util.io.cache import default_cache_dir, files_digest, intact_path, read_record
from util.io.lock import locked

NETWORKS = ('pnet', 'rnet', 'onet')
RECORD = 'detector.json'
MAX_ERROR = 1e-4  # every output of every network within this of TensorFlow, or refused
CONVERT_SECONDS = 5  # measured: 4.5 s on 2 cores, most of it importing TensorFlow


class DetectorConversionError(RuntimeError):
    """The conversion failed or was refused; one line saying why."""


def mtcnn_files():
    """(mtcnn's installed version, its shipped weight files, sorted)."""
    spec = importlib.util.find_spec('mtcnn')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('the mtcnn package is not installed (pip install "mtcnn>=1.0,<2")')
    weights = glob.glob(os.path.join(spec.submodule_search_locations[0], 'assets', 'weights',
                                     '*.lz4'))
    return importlib.metadata.version('mtcnn'), sorted(weights)


class DetectorCache:
    """The cache entry of the installed mtcnn. Creating the object writes only the file digest
    memo (util.io.cache.files_digest)."""

    def __init__(self, cache_dir=None):
        root = os.path.join(cache_dir or default_cache_dir(), 'mtcnn')
        version, weights = mtcnn_files()
        key = '%s\0%s' % (version, files_digest(weights, root))
        self.folder = os.path.join(root, hashlib.sha256(key.encode('utf-8')).hexdigest())

    def models(self):
        """{network: path} of the recorded, intact models, or None when any is missing."""
        record = read_record(os.path.join(self.folder, RECORD)) or {}
        entries = record.get('models')
        if not isinstance(entries, dict):
            return None
        paths = {name: intact_path(self.folder, entries.get(name)) for name in NETWORKS}
        return None if None in paths.values() else paths

    def convert(self, say):
        """Convert and verify (within MAX_ERROR) in a child process, unless another process
        just did -> {network: path}; DetectorConversionError when it fails or is refused."""
        # one converter at a time: a second process waits, then finds the first one's models
        with locked(os.path.join(self.folder, '.lock')):
            models = self.models()
            if models is not None:
                return models
            say('converting the face detector for ONNX Runtime, once (about %d s); later runs '
                'detect without TensorFlow' % CONVERT_SECONDS)
            done = subprocess.run(
                [sys.executable, '-m', 'util.face.detector_convert', self.folder,
                 repr(MAX_ERROR)], cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                # the child's own line is on stdout; a crash leaves its exception on stderr
                lines = (done.stdout.strip() or done.stderr.strip() or 'no output').splitlines()
                raise DetectorConversionError('%s (exit status %d)'
                                              % (lines[-1], done.returncode))
            models = self.models()
            if models is None:
                raise DetectorConversionError('the conversion left no intact models in %s'
                                              % self.folder)
            return models


def _session_runner(ort, path):
    """A model file -> callable (batch float32 NHWC -> its outputs, a list of arrays)."""
    # the CPU: these networks are small and P-Net sees a new shape per pyramid level
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})


def onnx_networks(say, cache_dir=None):
    """(P-Net, R-Net, O-Net) as util.face.mtcnn_stages networks on ONNX Runtime, converted first
    when the cache has none; None after one line saying why not (mtcnn on TensorFlow then)."""
    try:
        import onnxruntime as ort
        cache = DetectorCache(cache_dir)
        paths = cache.models() or cache.convert(say)
        return tuple(_session_runner(ort, paths[name]) for name in NETWORKS)
    except Exception as exc:  # noqa: BLE001 - detection goes on, on TensorFlow
        say('error: the face detector cannot run on ONNX Runtime (%s); detecting with mtcnn on '
            'TensorFlow' % one_line(exc, with_type=True))
        return None
