"""Advisory file locks (POSIX flock): one process at a time in a critical section."""
import contextlib
import os


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
