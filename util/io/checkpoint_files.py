"""The files that make up a TF1 Saver-V2 checkpoint (docs/formats.md §1), and which are missing.

The one place that knows a checkpoint's file set: the loader (run_RingNet) and the up-front
check of the command line (util.pipeline.model_files) both ask here, so a missing file gets
the same message from both. No TensorFlow needed.
"""
import codecs
import glob
import os
import re

DATA_SHARD = '.data-00000-of-00001'
RINGNET_WHAT = 'the RingNet checkpoint, goes in model/ or set --load_path'
RINGNET_SOURCE = 'the RingNet project page (https://ringnet.is.tue.mpg.de, registration needed)'


class CheckpointFilesError(IOError):
    """A checkpoint folder holds no checkpoint, or more than one."""


def missing_line(path, what, source):
    """The one-line description of a missing model file: what it is and where to get it."""
    return '%s: not found -- %s; download from %s' % (path, what, source)


def data_shards(prefix):
    """Sorted paths of the data shards ``PREFIX.data-*-of-*`` (any sharding)."""
    return sorted(glob.glob(glob.escape(prefix) + '.data-*-of-*'))


def missing_checkpoint_files(prefix):
    """Paths of the checkpoint files of ``prefix`` that do not exist (a data shard counts as
    present when any shard exists)."""
    missing = [prefix + ext for ext in ('.meta', '.index') if not os.path.isfile(prefix + ext)]
    if not data_shards(prefix):
        missing.append(prefix + DATA_SHARD)
    return missing


def _named_in_state_file(folder):
    """The prefix the folder's ``checkpoint`` text file names, if its ``.index`` exists.

    The file holds ``model_checkpoint_path: "PATH"``, PATH relative to the folder or absolute;
    absolute paths are often those of the machine that wrote it, so the file name is also
    tried inside ``folder``.
    """
    try:
        with open(os.path.join(folder, 'checkpoint'), encoding='utf-8', errors='replace') as fh:
            match = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', fh.read(), re.M)
    except OSError:
        return None
    if not match:
        return None
    # text-format escapes (octal bytes for non-ASCII names)
    named = codecs.escape_decode(match.group(1).encode('utf-8'))[0].decode('utf-8', 'replace')
    for prefix in (os.path.join(folder, named), os.path.join(folder, os.path.basename(named))):
        if os.path.isfile(prefix + '.index'):
            return prefix
    return None


def resolve_prefix(load_path):
    """Checkpoint prefix for ``load_path``: a prefix, or a folder holding one checkpoint (the
    one its ``checkpoint`` file names, or else its only ``.meta``)."""
    if not os.path.isdir(load_path):
        return load_path
    prefix = _named_in_state_file(load_path)
    if prefix is not None:
        return prefix
    metas = glob.glob(os.path.join(glob.escape(load_path), '*.meta'))
    if len(metas) != 1:
        raise CheckpointFilesError('%s: folder holds %s checkpoint (%s)'
                                   % (load_path, 'no' if not metas else 'more than one',
                                      RINGNET_WHAT))
    return metas[0][:-len('.meta')]


def checkpoint_paths(load_path):
    """Every file of the checkpoint at ``load_path`` (prefix or folder): .meta, .index and the
    data shards -- what a conversion depends on and what a cluster ships."""
    prefix = resolve_prefix(load_path)
    return [prefix + '.meta', prefix + '.index'] + data_shards(prefix)
