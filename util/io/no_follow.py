"""Writing inside a folder without ever following a symbolic link below it (docs/formats.md §5).

The output folder itself may be a link; nothing inside it may be. Folders are opened one
component at a time relative to their parent's descriptor with O_NOFOLLOW, and files are made
relative to their folder's descriptor, so a link that appears in the middle of a run (a
sub-folder replaced by a link to elsewhere) makes that write fail instead of writing through
it. POSIX only (descriptor-relative calls).
"""
import errno
import os
import stat

LINK_RULE = 'nothing is written through a link inside the output folder'


class LinkInside(OSError):
    """A symbolic link where the output folder needs a file or folder; one line naming it."""

    def __str__(self):
        return self.strerror  # the line itself, without OSError's '[Errno 40]'


def link_error(path):
    return LinkInside(errno.ELOOP, '%s: is a symbolic link (%s; remove the link or choose '
                      'another --out_folder)' % (path, LINK_RULE))


def find_link(folder):
    """The first symbolic link at any depth inside ``folder`` (a file's, a folder's, a dangling
    one; ``folder`` itself may be a link), or None. Links are not followed."""
    pending = [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    if entry.is_symlink():
                        return entry.path
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except FileNotFoundError:
            continue
    return None


def open_folder(path):
    """A descriptor of the folder ``path`` (which may itself be a link)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def _parts(rel):
    parts = [p for p in rel.split(os.sep) if p not in ('', '.')]
    if os.path.isabs(rel) or '..' in parts:
        raise ValueError('%s: not a path inside the output folder' % rel)
    return parts


def open_below(root_fd, rel, root_name='', create=True):
    """A descriptor of folder ``rel`` (relative, os.sep-separated) below the folder open as
    ``root_fd``, each component opened without following links (made when missing if
    ``create``). Raises LinkInside (named from ``root_name``) for a link on the way,
    FileNotFoundError when a folder is missing and not ``create``, NotADirectoryError for a
    file in the way. The caller closes the descriptor."""
    fd = os.dup(root_fd)
    done = root_name
    try:
        for part in _parts(rel):
            done = os.path.join(done, part)
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:  # made by another writer meanwhile
                    pass
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and is_link(part, fd):
                    raise link_error(done) from None
                if exc.errno == errno.ENOTDIR:
                    raise NotADirectoryError(errno.ENOTDIR, 'not a folder', done) from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def is_link(name, dir_fd):
    """Is ``name`` in the folder open as ``dir_fd`` a symbolic link?"""
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def create_file(name, dir_fd, path='', truncate=False, keep=False):
    """Open ``name`` in the folder ``dir_fd`` for writing, never through a link -> descriptor.
    New (exclusive) by default; ``truncate``: an existing regular file is emptied; ``keep``:
    opened for reading and writing as it is (made when missing). ``path`` names it in the
    LinkInside error."""
    flags = os.O_CREAT | os.O_NOFOLLOW
    if keep:
        flags |= os.O_RDWR
    else:
        flags |= os.O_WRONLY | (os.O_TRUNC if truncate else os.O_EXCL)
    try:
        # mode 0o666 less the umask, as for any new file (mkstemp would give 0600)
        return os.open(name, flags, 0o666, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EEXIST) and is_link(name, dir_fd):
            raise link_error(path or name) from None
        raise


def fd_path(dir_fd, fallback):
    """A path to the folder open as ``dir_fd`` that stays bound to it even if its name is
    replaced by a link later (Linux's /proc/self/fd), for writers that take a path (OpenCV's
    video writer, numpy); ``fallback`` (its plain path) where there is no /proc."""
    proc = '/proc/self/fd/%d' % dir_fd
    return proc if os.path.isdir(proc) else fallback
