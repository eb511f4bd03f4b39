"""Find the licensed model files (or the --demo stand-ins) and explain clearly what is missing."""
import glob
import os

from util.demo_assets import ensure_demo_assets

RINGNET_PAGE = 'the RingNet project page (https://ringnet.is.tue.mpg.de, registration needed)'
FLAME_PAGE = 'the FLAME website (https://flame.is.tue.mpg.de, registration needed)'


class MissingModelFilesError(IOError):
    """Raised when licensed files are absent; the message lists each one and where to get it."""


DATA_SHARD = '.data-00000-of-00001'


def _exists(path):
    """Is the file there? For a checkpoint's data file, any sharding will do."""
    if path.endswith(DATA_SHARD):
        return bool(glob.glob(glob.escape(path[:-len(DATA_SHARD)]) + '.data-*-of-*'))
    return os.path.isfile(path)


def required_files(config):
    """[(path, what it is, where it comes from)] for the files this run needs.

    ``load_path`` is a checkpoint prefix, or a folder holding one checkpoint.
    """
    ckpt = config.load_path
    needed = []
    if not os.path.isdir(ckpt):  # a folder is searched by the loader, which names what lacks
        needed = [(ckpt + ext, 'RingNet checkpoint (goes in model/)', RINGNET_PAGE)
                  for ext in ('.meta', '.index', DATA_SHARD)]
    needed.append((config.flame_model_path, 'FLAME model (goes in flame_model/)',
                   FLAME_PAGE + ', FLAME 2019, 2020 or 2023'))
    if config.save_texture:
        needed.append((config.flame_texture_data_path, 'FLAME texture data (goes in flame_model/)',
                       FLAME_PAGE + ', FLAME_texture_data.zip'))
    if config.template_mesh:
        needed.append((config.template_mesh, 'template mesh given by --template_mesh', 'your own file'))
    return needed


def resolve_model_files(config):
    """Return {'load_path', 'flame_model_path', 'flame_texture_data_path'} for this run.

    With ``config.demo`` the synthetic stand-ins are generated (once) and used. Otherwise every
    required file must exist, else MissingModelFilesError names each missing one.
    """
    if config.demo:
        return ensure_demo_assets()
    missing = [m for m in required_files(config) if not _exists(m[0])]
    if missing:
        lines = ['missing model file(s):']
        lines += ['  %s  -- %s; download from %s' % m for m in missing]
        lines.append('Put them there (or point --load_path / --flame_model_path / '
                     '--flame_texture_data_path at them), or try the pipeline now with --demo '
                     '(synthetic model, not a reconstruction).')
        raise MissingModelFilesError('\n'.join(lines))
    return {'load_path': config.load_path, 'flame_model_path': config.flame_model_path,
            'flame_texture_data_path': config.flame_texture_data_path}
