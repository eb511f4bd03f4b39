"""A progress bar on stderr (tqdm) when it is a terminal; nothing otherwise.

Error lines printed while the bar is shown go through the bar (``stream``), so they appear
on their own lines above it instead of tearing it.
"""
import os


def wants_bar(stream, quiet=False):
    """True when a bar belongs on ``stream``: not --quiet, and the stream is a terminal."""
    isatty = getattr(stream, 'isatty', None)
    return not quiet and bool(isatty and isatty())


def _columns(stream):
    """The terminal width of ``stream`` (0 when unknown)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


class _BarSafeStream:
    """A file-like stream whose writes clear the bar, print, and redraw it (tqdm.write)."""

    def __init__(self, tqdm_class, stream):
        self._tqdm, self._stream = tqdm_class, stream

    def write(self, text):
        if text:
            self._tqdm.write(text, file=self._stream, end='')

    def flush(self):
        self._stream.flush()


class Progress:
    """Images done out of ``total`` (starting at ``initial``), images per second and the time
    left, on ``stream`` when ``enabled``; otherwise every method does nothing and ``stream``
    is the plain stream. A context manager."""

    def __init__(self, total, stream, enabled, initial=0):
        self.stream, self._bar = stream, None
        if enabled:
            from tqdm import tqdm  # only when a bar is shown
            # tqdm draws nothing on a terminal that reports no size (0 x 0): assume 80 x 24
            sized = _columns(stream) > 0
            self._bar = tqdm(total=total, initial=initial, file=stream, unit='image',
                             dynamic_ncols=sized, ncols=None if sized else 80,
                             nrows=None if sized else 24, smoothing=0.1)
            self.stream = _BarSafeStream(tqdm, stream)

    def update(self, n=1):
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
