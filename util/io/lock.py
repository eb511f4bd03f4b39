"""Advisory file locks (POSIX flock): one process at a time in a critical section, and one run
at a time per output folder."""
import contextlib
import errno
import json
import os
import socket
import time

from util.io.no_follow import create_file, open_folder

FOLDER_LOCK = '.ringnet-lock'  # inside the output folder; holds {"host", "pid", "started"}


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the file ``path`` (created if needed) for the block; a second
    process waits. No lock where the platform has none (Windows)."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: concurrent writers each write their own file
        yield
        return
    with open(path, 'a') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class FolderInUse(OSError):
    """Another run holds the output folder (or left its lock on another machine); one line."""

    def __str__(self):
        return self.strerror  # the line itself, without OSError's '[Errno 16]'


def process_alive(pid):
    """Is process ``pid`` running on this machine?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(fd):
    """{'host', 'pid', 'started'} written in the lock file open as ``fd`` ({} if empty or not
    ours)."""
    data = os.pread(fd, 4096, 0)
    try:
        holder = json.loads(data.decode('utf-8'))
    except ValueError:
        return {}
    if not (isinstance(holder, dict) and isinstance(holder.get('host'), str)
            and isinstance(holder.get('pid'), int)):
        return {}
    return holder


def _describe(holder):
    if not holder:
        return 'another run (starting)'
    return 'process %d on host %s%s' % (holder['pid'], holder['host'], (
        ', started %s' % holder['started']) if isinstance(holder.get('started'), str) else '')


def _try_flock(fd):
    """flock(fd) without waiting -> True (held), False (another process holds it), None (this
    file system or platform has no flock: the file's content decides alone)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _open_lock(folder_fd, path):
    """Open the folder's lock file and flock it -> (fd, flock result). Retried while the
    file locked is no longer the one named FOLDER_LOCK (a run that finished removed it)."""
    while True:
        fd = create_file(FOLDER_LOCK, folder_fd, path, keep=True)
        try:
            held = _try_flock(fd)
            if held is False:
                return fd, held
            try:
                named = os.stat(FOLDER_LOCK, dir_fd=folder_fd, follow_symlinks=False)
            except FileNotFoundError:
                named = None
            if named is not None and named.st_ino == os.fstat(fd).st_ino:
                return fd, held
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def hold_folder(folder, note=None):
    """Hold ``folder`` (the output folder, which must exist) for one run: its lock file
    FOLDER_LOCK, flocked for the block and naming this host and process; removed at the end.

    Raises FolderInUse (one line naming the holder's host and process) when another run holds
    it, or when the file names another host (its process cannot be checked from here: the
    line says to delete the file if that run is over). A lock left by a process of this host
    that is gone is taken over; ``note`` (a callable) is told so in one line. The lock file is
    never opened through a link (util.io.no_follow)."""
    path = os.path.join(folder, FOLDER_LOCK)
    folder_fd = open_folder(folder)
    fd = None
    try:
        fd, held = _open_lock(folder_fd, path)
        holder = _holder(fd)
        for _ in range(100):  # the holder writes its name just after taking the lock
            if holder or held is not False:
                break
            time.sleep(0.01)
            holder = _holder(fd)
        host, pid = socket.gethostname(), os.getpid()
        if held is False:
            raise FolderInUse(errno.EBUSY, '%s: in use by %s; wait for that run to end or '
                              'choose another --out_folder' % (folder, _describe(holder)))
        if holder and holder['host'] != host:
            raise FolderInUse(errno.EBUSY, '%s: locked by %s; if that run is over, delete %s '
                              'and run again' % (folder, _describe(holder), path))
        if holder and holder['pid'] != pid:
            if held is None and process_alive(holder['pid']):  # no flock here: the pid decides
                raise FolderInUse(errno.EBUSY, '%s: in use by %s; wait for that run to end or '
                                  'choose another --out_folder' % (folder, _describe(holder)))
            if note is not None:
                note('%s: taking over the lock of %s, which is gone' % (folder,
                                                                        _describe(holder)))
        record = json.dumps({'host': host, 'pid': pid,
                             'started': time.strftime('%Y-%m-%d %H:%M:%S')}).encode('utf-8')
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record + b'\n', 0)
        except OSError as exc:  # a full disk: say which file
            raise OSError('%s: cannot write the run lock (%s)' % (path, exc.strerror)) from exc
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(FOLDER_LOCK, dir_fd=folder_fd)  # before the flock goes with close
    finally:
        if fd is not None:
            os.close(fd)
        os.close(folder_fd)
