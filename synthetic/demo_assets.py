"""Synthetic FLAME model + mean-theta checkpoint for ``--demo``, generated once into a user cache,
and the checkpoint's ONNX conversion with it (what the try-it command would convert next).

The first run's cost is TensorFlow's import: a child process (``python -m
synthetic.demo_assets FOLDER OUT.onnx``) imports it while this process writes the FLAME files,
then writes the checkpoint and converts it in the same interpreter (one import, not two).
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from util import ROOT
from util.errors import one_line
from util.io.cache import default_cache_dir

# Bump when the generators change, so stale caches are not reused.
DEMO_ASSETS_VERSION = 'demo-v4'  # v4: the mean head framed as CelebA crops

DEMO_NOTICE = (
    'NOTE: --demo runs on a SYNTHETIC FLAME-format model and a synthetic checkpoint whose regressor '
    'outputs the mean parameters: the mesh is NOT a reconstruction of the face in the image. For real '
    'results put the RingNet checkpoint in model/ and the FLAME files in flame_model/ (see README.md).')


def demo_asset_paths(folder):
    """Where the demo files live inside a finished cache folder."""
    return {
        'flame_model_path': os.path.join(folder, 'generic_model.pkl'),
        'flame_texture_data_path': os.path.join(folder, 'texture_data_512.npy'),
        'load_path': os.path.join(folder, 'ring_6_68641'),
        'flame_static_embedding_path': os.path.join(folder, 'flame_static_embedding.pkl'),
        'flame_dynamic_embedding_path': os.path.join(folder, 'flame_dynamic_embedding.npy'),
    }


GENERATING = ('generating the demo files (a synthetic FLAME model and checkpoint) and converting '
              'the checkpoint for ONNX Runtime, once (about 12 s); later runs start in about a '
              'second')


def _generate(folder, onnx_path):
    """Write every demo file into ``folder`` (an empty directory) and convert the checkpoint
    to ``onnx_path`` -> the conversion's record (util.model.onnx_convert.convert_checked), or
    None when the conversion failed (the files are written; the run converts or uses TF).
    Raises RuntimeError naming ``folder`` when the files cannot be written; the child is
    stopped whatever fails here."""
    from synthetic.flame import write_flame_assets
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL='2')
    child = subprocess.Popen([sys.executable, '-m', 'synthetic.demo_assets', folder, onnx_path],
                             cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        write_flame_assets(folder, seed=0)  # while the child imports TensorFlow
        out, err = child.communicate('go\n')
    finally:
        if child.poll() is None:  # this process failed or was interrupted
            child.kill()
            child.wait()
    lines = out.strip().splitlines()
    if child.returncode != 0 or not lines:
        said = [line for line in err.splitlines() if line.strip()]
        raise RuntimeError('%s: the demo checkpoint could not be written (%s)' % (
            folder, said[-1] if said else 'status %d' % child.returncode))
    return json.loads(lines[-1]).get('record')


def _child(folder, onnx_path):
    """The child of _generate: import TensorFlow, wait for the FLAME files ('go' on stdin),
    write the checkpoint, convert it -> exit status; stdout's last line is JSON {'record'}
    (null when the conversion failed: its error is on stderr)."""
    from synthetic.checkpoint import write_checkpoint
    from util.model import onnx_convert
    if sys.stdin.readline().strip() != 'go':  # the parent failed: write nothing
        return 1
    paths = demo_asset_paths(folder)
    write_checkpoint(paths['load_path'], paths['flame_model_path'], variant='v2', seed=0,
                     mean_only=True)
    record = None
    try:
        record = onnx_convert.convert_checked(paths['load_path'], onnx_path)
    except Exception as exc:  # noqa: BLE001 - the run converts again, or runs on TensorFlow
        print('the conversion failed: %s' % one_line(exc, with_type=True), file=sys.stderr)
    print(json.dumps({'record': record}))
    return 0


def ensure_demo_assets(cache_dir=None, say=None):
    """Return the demo's file paths, generating them first if the cache lacks them.

    Generation happens in a private temporary folder that is renamed into place when complete,
    so an interrupted or concurrent run never leaves (or reads) a half-written cache; the
    checkpoint's ONNX conversion made with it goes into the conversion cache (if verified).
    ``say`` (default: stderr) gets the one-time notice. Returns a dict with keys
    flame_model_path, flame_texture_data_path, load_path and the two landmark embeddings'
    flame_static_embedding_path, flame_dynamic_embedding_path.
    """
    from util.model.conversion_cache import ConversionCache
    say = say or (lambda line: print(line, file=sys.stderr))
    root = cache_dir or default_cache_dir()
    folder = os.path.join(root, DEMO_ASSETS_VERSION)
    if not os.path.isdir(folder):
        os.makedirs(root, exist_ok=True)
        say(GENERATING)
        tmp = tempfile.mkdtemp(prefix='.tmp-' + DEMO_ASSETS_VERSION, dir=root)
        onnx_path = tmp + '.onnx'
        try:
            record = _generate(tmp, onnx_path)
            os.rename(tmp, folder)
            if record is not None:  # a refused or failed adoption: the run converts itself
                with contextlib.suppress(Exception):
                    ConversionCache(demo_asset_paths(folder)['load_path'], root).adopt(
                        onnx_path, record, say)
        except OSError:
            if not os.path.isdir(folder):  # not a lost race with another process
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.remove(onnx_path)
    return demo_asset_paths(folder)


if __name__ == '__main__':
    sys.exit(_child(*sys.argv[1:]))
