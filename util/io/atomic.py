"""Write files atomically: readers never see a half-written output, failures leave nothing behind."""
import contextlib
import os
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
