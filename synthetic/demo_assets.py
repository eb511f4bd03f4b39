"""Synthetic FLAME model + mean-theta checkpoint for ``--demo``, generated once into a user cache."""
import os
import shutil
import tempfile

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


def _generate(folder):
    """Write every demo file into ``folder`` (an empty directory)."""
    from synthetic.checkpoint import write_checkpoint
    from synthetic.flame import write_flame_assets
    flame = write_flame_assets(folder, seed=0)
    write_checkpoint(os.path.join(folder, 'ring_6_68641'), flame['flame_model'],
                     variant='v2', seed=0, mean_only=True)


def ensure_demo_assets(cache_dir=None):
    """Return the demo's file paths, generating them first if the cache lacks them.

    Generation happens in a private temporary folder that is renamed into place when complete,
    so an interrupted or concurrent run never leaves (or reads) a half-written cache.
    Returns a dict with keys flame_model_path, flame_texture_data_path, load_path and the two
    landmark embeddings' flame_static_embedding_path, flame_dynamic_embedding_path.
    """
    root = cache_dir or default_cache_dir()
    folder = os.path.join(root, DEMO_ASSETS_VERSION)
    if not os.path.isdir(folder):
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.tmp-' + DEMO_ASSETS_VERSION, dir=root)
        try:
            _generate(tmp)
            os.rename(tmp, folder)
        except OSError:
            if not os.path.isdir(folder):  # not a lost race with another process
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return demo_asset_paths(folder)
