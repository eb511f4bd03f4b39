"""Write files atomically: readers never see a half-written output, failures leave nothing behind.

``atomic_path`` makes one file appear whole or not at all; ``Staging.commit`` does the same for a
set of files (one image's outputs), and ``recover_staging`` cleans up after a killed run.
"""
import contextlib
import errno
import itertools
import json
import os
import shutil
import socket
import stat
import uuid

from util.io.lock import process_alive
from util.io.no_follow import create_file, fd_path, is_link, link_error, open_below, open_folder


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
    each file atomically as it comes (a temporary beside it, renamed); None keeps the file
    that is there. Then remove every other file (and emptied folder) under the sub-folders
    ``prune``: what an earlier set left there. -> the number of files written. Rewriting the
    same bytes replaces nothing a reader sees; a file missing for a None is an error
    (OSError). No link inside ``out_folder`` is followed (util.io.no_follow): one on the way
    is util.io.no_follow.LinkInside, and pruning removes a link itself, never what it names."""
    keep, written = set(), 0
    out_fd = open_folder(out_folder)
    try:
        for rel, data in items:
            parts = tuple(p for p in rel.split('/') if p)
            keep.add(parts)
            path = os.path.join(out_folder, *parts)
            folder = open_below(out_fd, os.sep.join(parts[:-1]), out_folder)
            try:
                if data is None:
                    if not _is_file(parts[-1], folder):
                        raise OSError(errno.ENOENT, 'kept file is not there', path)
                    continue
                if is_link(parts[-1], folder):
                    raise link_error(path)
                base, ext = os.path.splitext(parts[-1])
                tmp = '.%s.%s.tmp%s' % (base, uuid.uuid4().hex[:12], ext)
                try:
                    with os.fdopen(create_file(tmp, folder), 'wb') as fh:
                        fh.write(data)
                    os.replace(tmp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    _remove(tmp, folder)
                    raise
            finally:
                os.close(folder)
            written += 1
        for sub in prune:
            _prune(out_fd, tuple(p for p in sub.split('/') if p), keep)
    finally:
        os.close(out_fd)
    return written


def _prune(out_fd, sub, keep):
    """Remove every file under the folder ``sub`` (a tuple of parts) of ``out_fd`` whose parts
    are not in ``keep``, then the folders below it left empty; links are removed, not
    followed."""
    try:
        top = open_below(out_fd, os.sep.join(sub), create=False)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk('.', dir_fd=top, topdown=False):
            here = sub + tuple(p for p in dirpath.split(os.sep) if p not in ('', '.'))
            for name in filenames:
                if here + (name,) not in keep:
                    _remove(name, dir_fd)
            for name in dirnames:  # already pruned below (bottom-up): gone if empty
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=dir_fd)
    finally:
        os.close(top)


def _is_file(name, dir_fd):
    """Is ``name`` in the folder ``dir_fd`` a regular file (not a link)?"""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


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


def _remove(name, dir_fd=None):
    with contextlib.suppress(FileNotFoundError):
        os.remove(name, dir_fd=dir_fd)


def _remove_output(out_fd, rel):
    """Remove output ``rel`` (relative to the folder ``out_fd``) unless a link is on the way."""
    try:
        parent = open_below(out_fd, os.path.dirname(rel), create=False)
    except (OSError, ValueError):
        return
    try:
        _remove(os.path.basename(rel), parent)
    finally:
        os.close(parent)


def _undo(journal, folder_fd, out_fd):
    """Roll back the commit that ``journal`` (a file in the staging folder ``folder_fd``)
    describes, if it did not complete.

    The journal lists (temporary name in the staging folder, final path relative to the output
    folder) pairs and is written before the first rename. A temporary still present means its
    rename never happened, so the commit is incomplete: the finals already renamed are removed
    (none of the set stays) and so are the temporaries. If every temporary is gone the commit
    completed and nothing is touched.
    """
    try:
        with os.fdopen(os.open(journal, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder_fd),
                       encoding='utf-8') as fh:
            pairs = json.load(fh)
        present = [_exists(tmp, folder_fd) for tmp, _ in pairs]
    except (OSError, ValueError, TypeError):  # killed while writing the journal: no rename yet
        return
    if any(present):
        for (tmp, final), there in zip(pairs, present):
            if there:
                _remove(tmp, folder_fd)
            else:
                _remove_output(out_fd, final)


def _exists(name, dir_fd):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def recover_staging(out_folder):
    """Clean up after runs into ``out_folder`` that were killed (SIGKILL, power loss): finish
    rolling back their half-done commits and delete their temporaries -> number of runs
    cleaned. Only staging folders of this machine whose process is gone are touched; no link
    inside ``out_folder`` is followed (LinkInside when the staging folder is one)."""
    host = socket.gethostname()
    cleaned = 0
    try:
        out_fd = open_folder(out_folder)
    except FileNotFoundError:
        return 0
    try:
        try:
            root_fd = open_below(out_fd, STAGING_FOLDER, out_folder, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        try:
            for name in sorted(os.listdir(root_fd)):
                owner_host, _, rest = name.rpartition('@')
                pid = rest.split('-')[0]
                if owner_host != host or not pid.isdigit() or process_alive(int(pid)):
                    continue
                try:
                    folder_fd = open_below(root_fd, name, create=False)
                except OSError:  # a link, or a stray file: not ours to touch
                    continue
                try:
                    for journal in sorted(os.listdir(folder_fd)):
                        if journal.endswith('.journal'):
                            _undo(journal, folder_fd, out_fd)
                finally:
                    os.close(folder_fd)
                shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
                cleaned += 1
        finally:
            os.close(root_fd)
        with contextlib.suppress(OSError):
            os.rmdir(STAGING_FOLDER, dir_fd=out_fd)  # only when empty
    finally:
        os.close(out_fd)
    return cleaned


class Staging:
    """All-or-nothing commits of sets of files under ``out_folder``.

    Temporaries are written to OUT/.ringnet-partial/HOST@PID-TOKEN/ (same file system, so
    the renames are atomic), never next to the outputs, so nothing half-written ever carries
    an output's name. A journal written before the first rename lets recover_staging() undo a
    commit that a killed process left half done. No link inside ``out_folder`` is followed
    (util.io.no_follow): the staging folder and each output's folder are opened component by
    component, and the renames are made between those descriptors. Use as a context manager:
    the folder is removed on exit.
    """

    def __init__(self, out_folder):
        self.out_folder = out_folder
        self.name = '%s@%d-%s' % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])
        self.folder = os.path.join(out_folder, STAGING_FOLDER, self.name)
        self._count = itertools.count()
        self._out_fd = self._root_fd = self._fd = None
        self._base = None

    def __enter__(self):
        os.makedirs(self.out_folder, exist_ok=True)
        self._out_fd = open_folder(self.out_folder)
        try:
            self._root_fd = open_below(self._out_fd, STAGING_FOLDER, self.out_folder)
            self._fd = open_below(self._root_fd, self.name,
                                  os.path.join(self.out_folder, STAGING_FOLDER))
        except BaseException:
            self._close()
            raise
        self._base = fd_path(self._fd, self.folder)
        return self

    def __exit__(self, *exc):
        if self._root_fd is not None:
            shutil.rmtree(self.name, dir_fd=self._root_fd, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(STAGING_FOLDER, dir_fd=self._out_fd)  # only when empty
        self._close()

    def _close(self):
        for fd in (self._fd, self._root_fd, self._out_fd):
            if fd is not None:
                os.close(fd)
        self._out_fd = self._root_fd = self._fd = None

    def new_file(self, suffix=''):
        """A fresh path inside the staging folder, for an output too big to hold in memory
        (a video, a clip's meshes): write it there, then hand it to commit(files=...). On
        Linux the path goes through the folder's descriptor (/proc/self/fd), so it cannot be
        redirected by a link made later."""
        return os.path.join(self._base, 'f%d%s' % (next(self._count), suffix))

    def _staged_name(self, path):
        name = os.path.basename(path)
        if os.path.dirname(path) != self._base or not _exists(name, self._fd):
            raise ValueError('%s: not a file of this staging folder' % path)
        return name

    def commit(self, contents, files=None):
        """Write {relative path: bytes} under out_folder, and move {relative path: path from
        new_file()} there, all or none -> {relative path: size in bytes} of the files now in
        place.

        Every final path is checked before anything is renamed; if a rename still fails, the
        files already renamed are removed again, so the set is never partly in place (the
        new_file() paths are removed too). A link on the way to an output (or in its place)
        fails the commit with util.io.no_follow.LinkInside, writing nothing.
        """
        files = files or {}
        rels = list(contents) + list(files)
        n = next(self._count)
        pairs = [('%d.%d.tmp' % (n, k), rel) for k, rel in enumerate(list(contents))]
        pairs += [(self._staged_name(path), rel) for rel, path in files.items()]
        journal = '%d.journal' % n
        parents, renamed = {}, []
        try:
            for rel in rels:
                folder = os.path.dirname(rel)
                if folder not in parents:
                    parents[folder] = open_below(self._out_fd, folder, self.out_folder)
                name, final = os.path.basename(rel), os.path.join(self.out_folder, rel)
                if is_link(name, parents[folder]):
                    raise link_error(final)
                if _is_dir(name, parents[folder]):
                    raise IsADirectoryError(errno.EISDIR, 'a folder is in the way', final)
            sizes = {}
            for (tmp, rel), data in zip(pairs, contents.values()):
                with os.fdopen(create_file(tmp, self._fd), 'wb') as fh:
                    fh.write(data)
                sizes[rel] = len(data)
            for tmp, rel in pairs[len(contents):]:
                sizes[rel] = os.stat(tmp, dir_fd=self._fd).st_size
            with os.fdopen(create_file(journal, self._fd), 'w', encoding='utf-8') as fh:
                json.dump(pairs, fh)
            for tmp, rel in pairs:
                folder = parents[os.path.dirname(rel)]
                os.replace(tmp, os.path.basename(rel), src_dir_fd=self._fd, dst_dir_fd=folder)
                renamed.append(rel)
        except BaseException:
            for rel in renamed:
                _remove(os.path.basename(rel), parents[os.path.dirname(rel)])
            for tmp, _ in pairs:
                _remove(tmp, self._fd)
            raise
        finally:
            _remove(journal, self._fd)
            for fd in parents.values():
                os.close(fd)
        return sizes


def _is_dir(name, dir_fd):
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False
