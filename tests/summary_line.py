"""The run's summary line, read back: its speed part ' in S s (R images/s, BACKEND)' is
parsed or set aside here, so tests about the rest compare it exactly."""
import re

SPEED = re.compile(r' in (\d+\.\d) s \(([0-9.e+-]+) images/s, ([^)]+)\)')


def without_speed(text):
    """``text`` (a summary line, or several lines) with the speed part removed."""
    return SPEED.sub('', text)


def speed_of(line):
    """(seconds, images per second, backend label) of a summary line; AssertionError when it
    has none."""
    found = SPEED.search(line)
    assert found, line
    return float(found.group(1)), float(found.group(2)), found.group(3)


def rate_counts(line, images):
    """Is the line's rate ``images`` over its seconds, both as rounded for printing (seconds
    to 0.1 s, the rate to 0.1 images/s)?"""
    seconds, rate, _ = speed_of(line)
    low, high = images / (seconds + 0.05), images / max(seconds - 0.05, 1e-3)
    return low - 0.05 <= rate <= high + 0.05
