"""Write files atomically: readers never see a half-written output, failures leave nothing behind.

``atomic_path`` makes one file appear whole or not at all; ``Staging.commit`` does the same for a
set of files (one image's outputs), and ``recover_staging`` cleans up after a killed run.
"""
import contextlib
import errno
import glob
import itertools
import json
import os
import shutil
import socket
import uuid


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temporary name keeps ``path``'s extension, so writers that pick a format from the
    extension (cv2.imwrite, np.save) behave as for ``path`` itself. It is created with mode
    0o666 less the umask, so the final file gets the usual permissions (mkstemp would give 0600).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, '.%s.%s.tmp%s' % (base, uuid.uuid4().hex[:12], ext))
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_files(out_folder, items, prune=()):
    """Write a stream of (relative '/'-separated path, bytes or None) under ``out_folder``,
    each file atomically (atomic_path) as it comes; None keeps the file that is there. Then
    remove every other file (and emptied folder) under the sub-folders ``prune``: what an
    earlier set left there. -> the number of files written. Rewriting the same bytes
    replaces nothing a reader sees; a file missing for a None is an error (OSError)."""
    keep, written = set(), 0
    for rel, data in items:
        path = os.path.join(out_folder, *rel.split('/'))
        keep.add(os.path.normpath(path))
        if data is None:
            if not os.path.isfile(path):
                raise OSError(errno.ENOENT, 'kept file is not there', path)
            continue
        with atomic_path(path) as tmp, open(tmp, 'wb') as fh:
            fh.write(data)
        written += 1
    for sub in prune:
        top = os.path.join(out_folder, sub)
        for folder, _, names in os.walk(top, topdown=False):
            for name in names:
                path = os.path.normpath(os.path.join(folder, name))
                if path not in keep:
                    os.remove(path)
            if folder != top and not os.listdir(folder):
                os.rmdir(folder)
    return written


STAGING_FOLDER = '.ringnet-partial'


def _file_in_the_way(path):
    """``path`` or its nearest existing ancestor, when that is not a folder; else None."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return None if os.path.isdir(path) else path


def check_writable(folder):
    """Create ``folder`` if needed and prove a file can be made in it; else raise OSError with
    one line naming it (so a run fails before any work, not after every image)."""
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        where = 'it' if blocker == os.path.abspath(folder) else blocker
        what = 'is a file' if os.path.isfile(blocker) else 'exists'
        raise OSError('%s: cannot write outputs there: %s %s, not a folder'
                      % (folder, where, what))
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, '.ringnet-probe-%s' % uuid.uuid4().hex[:12])
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        os.remove(probe)
    except OSError as exc:
        raise OSError('%s: cannot write outputs in this folder (%s)'
                      % (folder, exc.strerror or exc)) from exc


def _alive(pid):
    """Is process ``pid`` running on this machine?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _undo(journal):
    """Roll back the commit that ``journal`` describes, if it did not complete.

    The journal lists (temporary, final) pairs and is written before the first rename. A
    temporary still present means its rename never happened, so the commit is incomplete:
    the finals already renamed are removed (none of the set stays) and so are the temporaries.
    If every temporary is gone the commit completed and nothing is touched.
    """
    try:
        with open(journal, encoding='utf-8') as fh:
            pairs = json.load(fh)
    except (OSError, ValueError):  # killed while writing the journal: no rename had happened
        return
    if any(os.path.exists(tmp) for tmp, _ in pairs):
        for tmp, final in pairs:
            if os.path.exists(tmp):
                _remove(tmp)
            else:
                _remove(final)


def recover_staging(out_folder):
    """Clean up after runs into ``out_folder`` that were killed (SIGKILL, power loss): finish
    rolling back their half-done commits and delete their temporaries -> number of runs
    cleaned. Only staging folders of this machine whose process is gone are touched."""
    root = os.path.join(out_folder, STAGING_FOLDER)
    host = socket.gethostname()
    cleaned = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(root):
            owner_host, _, rest = entry.name.rpartition('@')
            pid = rest.split('-')[0]
            if owner_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            for journal in glob.glob(os.path.join(glob.escape(entry.path), '*.journal')):
                _undo(journal)
            shutil.rmtree(entry.path, ignore_errors=True)
            cleaned += 1
    with contextlib.suppress(OSError):
        os.rmdir(root)  # only when empty
    return cleaned


class Staging:
    """All-or-nothing commits of sets of files under ``out_folder``.

    Temporaries are written to OUT/.ringnet-partial/HOST@PID-TOKEN/ (same file system, so
    the renames are atomic), never next to the outputs, so nothing half-written ever carries
    an output's name. A journal written before the first rename lets recover_staging() undo a
    commit that a killed process left half done. Use as a context manager: the folder is
    removed on exit.
    """

    def __init__(self, out_folder):
        self.out_folder = out_folder
        self.folder = os.path.join(out_folder, STAGING_FOLDER, '%s@%d-%s' % (
            socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12]))
        self._count = itertools.count()

    def __enter__(self):
        os.makedirs(self.folder, exist_ok=True)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.folder))  # only when empty

    def new_file(self, suffix=''):
        """A fresh path inside the staging folder, for an output too big to hold in memory
        (a video, a clip's meshes): write it there, then hand it to commit(files=...)."""
        return os.path.join(self.folder, 'f%d%s' % (next(self._count), suffix))

    def commit(self, contents, files=None):
        """Write {relative path: bytes} under out_folder, and move {relative path: path from
        new_file()} there, all or none -> the final paths.

        Every final path is checked before anything is renamed; if a rename still fails, the
        files already renamed are removed again, so the set is never partly in place (the
        new_file() paths are removed too).
        """
        files = files or {}
        finals = [os.path.join(self.out_folder, rel) for rel in list(contents) + list(files)]
        for final in finals:
            if os.path.isdir(final):
                raise IsADirectoryError(errno.EISDIR, 'a folder is in the way', final)
            os.makedirs(os.path.dirname(os.path.abspath(final)), exist_ok=True)
        n = next(self._count)
        pairs = [(os.path.join(self.folder, '%d.%d.tmp' % (n, k)), final)
                 for k, final in enumerate(finals[:len(contents)])]
        pairs += list(zip(files.values(), finals[len(contents):]))
        journal = os.path.join(self.folder, '%d.journal' % n)
        renamed = []
        try:
            for (tmp, _), data in zip(pairs, contents.values()):
                # mode 0o666 less the umask, as for any new file (mkstemp would give 0600)
                with os.fdopen(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666),
                               'wb') as fh:
                    fh.write(data)
            with open(journal, 'w', encoding='utf-8') as fh:
                json.dump(pairs, fh)
            for tmp, final in pairs:
                os.replace(tmp, final)
                renamed.append(final)
        except BaseException:
            for final in renamed:
                _remove(final)
            for tmp, _ in pairs:
                _remove(tmp)
            raise
        finally:
            _remove(journal)
        return finals

