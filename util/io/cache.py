"""The user cache folder, content digests of the files a cache entry is derived from, and the
records that vouch for an entry's files.

Entries (the --demo assets, ONNX conversions, the face detector's conversion) live in
``$RINGNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/ringnet``, else ``~/.cache/ringnet``. A
conversion is keyed by the sha256 of its source files' contents; hashing a large checkpoint on
every start would cost most of a cold start, so each file's digest is remembered against its
(size, mtime, inode): a file that changes gets a new stat (its ctime at least) and is hashed
again.

A converted file is stored under a name that holds its own sha256 (concurrent writers never
overwrite each other's file) and is vouched for by a JSON record written after it, atomically;
a file whose bytes do not match its record is never used.
"""
import contextlib
import hashlib
import json
import os
import time

from util.io.atomic import atomic_path

DIGEST_MEMO = 'file-digests.json'


def default_cache_dir():
    """``$RINGNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/ringnet``, else ``~/.cache/ringnet``."""
    if os.environ.get('RINGNET_CACHE_DIR'):
        return os.environ['RINGNET_CACHE_DIR']
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'ringnet')


def sha256_file(path, chunk=1 << 22):
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for block in iter(lambda: fh.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(path):
    """What changes when a file's content may have: size, mtime, inode, and ctime (which no
    tool can set back, unlike mtime: a copy that keeps timestamps still gets a new ctime)."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def files_digest(paths, cache_dir):
    """Hex sha256 over the names (not folders) and contents of ``paths``, in the given order.

    Per-file digests are memoised in ``cache_dir``/file-digests.json by absolute path and
    (size, mtime_ns, inode, ctime_ns); the memo is only a shortcut: a lost or garbled memo
    costs one re-hash, and one that cannot be written is simply not kept.
    """
    memo_path = os.path.join(cache_dir, DIGEST_MEMO)
    memo = {}
    with contextlib.suppress(OSError, ValueError):
        with open(memo_path, encoding='utf-8') as fh:
            memo = json.load(fh)
    if not isinstance(memo, dict):  # garbled: start again
        memo = {}
    digest, changed = hashlib.sha256(), False
    for path in paths:
        key, stat = os.path.abspath(path), _stat_key(path)
        entry = memo.get(key)
        if not (isinstance(entry, list) and len(entry) == 5 and entry[:4] == stat):
            entry, changed = stat + [sha256_file(path)], True
            memo[key] = entry
        digest.update(os.path.basename(path).encode('utf-8', 'surrogateescape') + b'\0')
        digest.update(str(entry[4]).encode('ascii') + b'\0')
    if changed:
        with contextlib.suppress(OSError):
            with atomic_path(memo_path) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
                json.dump(memo, fh)
    return digest.hexdigest()


def read_record(path):
    """The JSON object in ``path`` (dict), or None when absent, unreadable or not an object."""
    with contextlib.suppress(OSError, ValueError):
        with open(path, encoding='utf-8') as fh:
            record = json.load(fh)
        return record if isinstance(record, dict) else None
    return None


def write_record(path, record):
    """Write ``record`` (a JSON-able dict) to ``path`` atomically; its folder is made."""
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
        json.dump(record, fh, indent=1)


def _stored_entry(prefix, suffix, sha):
    """{'file': PREFIX-<16 hex of sha>SUFFIX, 'sha256': sha}, the entry a record keeps."""
    return {'file': '%s-%s%s' % (prefix, sha[:16], suffix), 'sha256': sha}


def store_file(folder, prefix, suffix, data):
    """Write ``data`` (bytes) atomically to folder/PREFIX-<16 hex of its sha256>SUFFIX ->
    {'file': that name, 'sha256': the full hex digest}, the entry a record keeps for it."""
    entry = _stored_entry(prefix, suffix, hashlib.sha256(data).hexdigest())
    with atomic_path(os.path.join(folder, entry['file'])) as tmp, open(tmp, 'wb') as fh:
        fh.write(data)
    return entry


def move_file(folder, prefix, suffix, path):
    """store_file() for a finished file at ``path`` on the same file system: renamed into
    place (atomic) instead of copied -> its entry."""
    entry = _stored_entry(prefix, suffix, sha256_file(path))
    os.replace(path, os.path.join(folder, entry['file']))
    return entry


def intact_path(folder, entry):
    """folder/entry['file'] when that file exists and its sha256 is entry['sha256'], else None
    (a missing, truncated or tampered file is never used). Only the base name is taken."""
    if not isinstance(entry, dict):
        return None
    path = os.path.join(folder, os.path.basename(str(entry.get('file', ''))))
    if not os.path.isfile(path) or sha256_file(path) != entry.get('sha256'):
        return None
    return path


def tidy(folder, superseded, stale_s=86400):
    """Remove the files of ``folder`` that ``superseded(name)`` says are (call it under the
    entry's lock), and scratch files ('.'-named, not .lock) a killed run left ``stale_s`` ago."""
    stale = time.time() - stale_s
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        leftover = (name.startswith('.') and name != '.lock'
                    and os.path.getmtime(path) < stale)
        if superseded(name) or leftover:
            with contextlib.suppress(OSError):
                os.remove(path)
