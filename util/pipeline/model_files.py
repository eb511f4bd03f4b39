"""Find the licensed model files (or the --demo stand-ins) and explain clearly what is missing.

Checked before anything heavy loads, so a missing file is reported in seconds, all at once.
"""
import os

from util.io.checkpoint_files import (RINGNET_SOURCE, RINGNET_WHAT, CheckpointFilesError,
                                      missing_checkpoint_files, missing_line, resolve_prefix)
from util.outputs.naming import wants_landmarks

FLAME_SOURCE = 'the FLAME website (https://flame.is.tue.mpg.de, registration needed)'
EMBEDDING_SOURCE = ('the original RingNet repository, its flame_model/ folder '
                    '(https://github.com/soubhiksanyal/RingNet)')
# the model files of a run: the checkpoint, then the FLAME files (their flags' names)
FLAME_FILE_KEYS = ('flame_model_path', 'flame_texture_data_path', 'flame_static_embedding_path',
                   'flame_dynamic_embedding_path')
FILE_KEYS = ('load_path',) + FLAME_FILE_KEYS


class MissingModelFilesError(IOError):
    """Raised when licensed files are absent; the message lists each one and where to get it."""


def missing_model_files(config):
    """One line (util.io.checkpoint_files.missing_line) per file this run needs that is absent.

    ``config.load_path`` is a checkpoint prefix, or a folder holding one checkpoint.
    """
    try:
        lines = [missing_line(path, RINGNET_WHAT, RINGNET_SOURCE)
                 for path in missing_checkpoint_files(resolve_prefix(config.load_path))]
    except CheckpointFilesError as exc:
        lines = ['%s; download from %s' % (exc, RINGNET_SOURCE)]
    others = [(config.flame_model_path, 'the FLAME model, goes in flame_model/',
               FLAME_SOURCE + ', FLAME 2019, 2020 or 2023', True),
              (config.flame_texture_data_path, 'the FLAME texture data, goes in flame_model/',
               FLAME_SOURCE + ', FLAME_texture_data.zip', config.save_texture),
              (config.template_mesh, 'the template mesh given by --template_mesh', 'your own file',
               bool(config.template_mesh))]
    landmarks = wants_landmarks(config)
    others += [(config.flame_static_embedding_path, 'the FLAME static landmark embedding, goes '
                'in flame_model/', EMBEDDING_SOURCE, landmarks),
               (config.flame_dynamic_embedding_path, 'the FLAME dynamic landmark embedding, goes '
                'in flame_model/', EMBEDDING_SOURCE, landmarks)]
    lines += [missing_line(path, what, source) for path, what, source, needed in others
              if needed and not os.path.isfile(path)]
    return lines


def resolve_model_files(config):
    """Return {key: path} for every key of FILE_KEYS, for this run: every required file must
    exist, else MissingModelFilesError names each missing one. (--demo's synthetic stand-ins
    are resolved by the command line, synthetic.demo_assets.)"""
    missing = missing_model_files(config)
    if missing:
        raise MissingModelFilesError('\n'.join(
            ['missing model file(s):'] + ['  ' + line for line in missing] +
            ['Put them there (or point --load_path / --flame_model_path / '
             '--flame_texture_data_path / --flame_*_embedding_path at them), or try the pipeline now with --demo '
             '(synthetic model, not a reconstruction).']))
    return {key: getattr(config, key) for key in FILE_KEYS}
