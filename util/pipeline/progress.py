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
    """A file-like stream that prints whole lines through the bar (tqdm.write clears the bar,
    prints, and redraws it). ``print`` writes a line's text and its newline separately, so
    text is held until its newline arrives: a line is never drawn over by the bar."""

    def __init__(self, tqdm_class, stream):
        self._tqdm, self._stream = tqdm_class, stream
        self._pending = ''

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split('\n')
        for line in lines:
            self._tqdm.write(line, file=self._stream)

    def flush(self):
        if self._pending:
            self._tqdm.write(self._pending, file=self._stream)
            self._pending = ''
        self._stream.flush()


class Progress:
    """Inputs done out of ``total`` (starting at ``initial``; a video counts its frames, see
    expect), per second and the time left, on ``stream`` when ``enabled``; otherwise every method does nothing and ``stream``
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

    def expect(self, more, unit=None):
        """Add ``more`` (may be negative) to the total, e.g. a video's frames once it is
        open; ``unit``: count in these units from now on ('frame': a photo counts as one)."""
        if self._bar is not None:
            self._bar.total += more
            if unit:
                self._bar.unit = unit
            self._bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self.stream.flush()
            self._bar.close()
