"""Model files sent to the machines of a cluster, each machine keeping a copy by content.

The driver names each file by its digest (util.io.cache.files_digest: sha256 over its name and
contents) and can hand its bytes over (a fetch callable). A machine uses the driver's own paths
when they hold those very files there (the driver's machine, a shared file system); otherwise
it keeps the group (a checkpoint's files must sit side by side under their names) in
CACHE/shipped/<group>/, fetched once and used again as long as the bytes give the digests.
"""
import hashlib
import os

from util.io.atomic import atomic_path
from util.io.cache import files_digest

SHIPPED_FOLDER = 'shipped'


def file_digest(path, cache_dir):
    """The digest a shipped file is known by (name and contents; memoised per stat)."""
    return files_digest([path], cache_dir)


def local_files(paths, digests, fetch, cache_dir):
    """paths [N] as on the driver, digests [N] (file_digest of each), fetch(k) -> the bytes of
    file k -> [N] paths on this machine holding those files, all in one folder.

    The driver's paths when they all hold the files here; else CACHE/shipped/<group>/<name>,
    each fetched and written atomically when absent or changed. Raises ValueError naming the
    file when fetched bytes do not give its digest.
    """
    if all(os.path.isfile(p) and file_digest(p, cache_dir) == d for p, d in zip(paths, digests)):
        return list(paths)
    group = hashlib.sha256(''.join(digests).encode('ascii')).hexdigest()
    folder = os.path.join(cache_dir, SHIPPED_FOLDER, group)
    copies = []
    for k, (path, digest) in enumerate(zip(paths, digests)):
        copy = os.path.join(folder, os.path.basename(path))
        if not (os.path.isfile(copy) and file_digest(copy, cache_dir) == digest):
            with atomic_path(copy) as tmp, open(tmp, 'wb') as fh:
                fh.write(fetch(k))
            # checked under its final name (the digest covers the name); readers check too
            if file_digest(copy, cache_dir) != digest:
                os.remove(copy)
                raise ValueError("%s: the copy shipped to this machine does not match the "
                                 "driver's file (sha256)" % path)
        copies.append(copy)
    return copies
