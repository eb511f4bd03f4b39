"""Hide TensorFlow's known start-up lines on file descriptor 2 while it loads; pass all others.

TensorFlow's C++ runtime writes them straight to file descriptor 2 (sys.stderr never sees them),
some before it reads TF_CPP_MIN_LOG_LEVEL, so only a filter on the descriptor removes them.
While ``tensorflow_start_filtered()`` is active, descriptor 2 is the input of a small filter
process (this file run as a script) that copies every line to the real stderr except the ones
in TF_START_NOISE. A process rather than a thread: if the import aborts the interpreter (a
missing CPU instruction, a broken CUDA library), the lines written before it still reach the
user, because the filter outlives its writer and drains the pipe. With RINGNET_VERBOSE=1 in the
environment (``python -m demo --verbose`` sets it) nothing is filtered.

Imports nothing of this project, and nothing beyond the standard library.
"""
import contextlib
import os
import re
import subprocess
import sys

SHOW_ALL = 'RINGNET_VERBOSE'  # environment variable: '1' turns the filter off

# What `import tensorflow` (2.21, x86-64 Linux, CPU) writes to fd 2, measured: each pair twice
# (two libraries initialise), the cpu_feature_guard pair when TF_CPP_MIN_LOG_LEVEL is 0 or 1.
# Whole lines only; anything else, warnings and errors included, passes.
_GLOG = rb'I\d{4} [\d:.]+ +\d+ '  # absl's prefix: I<mmdd> <time> <thread id>
TF_START_NOISE = tuple(re.compile(pattern) for pattern in (
    rb'WARNING: All log messages before absl::InitializeLog\(\) is called are written to '
    rb'STDERR',
    _GLOG + rb'port\.cc:\d+\] oneDNN custom operations are on\. You may see slightly different '
    rb'numerical results due to floating-point round-off errors from different computation '
    rb'orders\. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`\.',
    _GLOG + rb'cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use '
    rb'available CPU instructions in performance-critical operations\.',
    rb'To enable the following instructions: [A-Z0-9_ ]+, in other operations, rebuild '
    rb'TensorFlow with the appropriate compiler flags\.',
))


def is_noise(line, patterns=TF_START_NOISE):
    """bytes ``line`` (without its terminator) -> True if it is one of ``patterns``, whole."""
    return any(pattern.fullmatch(line) for pattern in patterns)


def copy_filtered(read, write, patterns=TF_START_NOISE):
    """Copy ``read(n) -> bytes`` (b'' at the end) to ``write(bytes)``, dropping noise lines.

    A line ends at b'\\n' or b'\\r' (a progress bar redraws with b'\\r'); each is written as soon
    as it is complete, with its terminator; a last unterminated piece is written at the end.
    """
    pending = b''
    while True:
        chunk = read(65536)
        if not chunk:
            break
        lines = re.split(rb'(?<=[\r\n])', pending + chunk)   # each keeps its terminator
        pending = lines.pop()                                # after the last one ('' if none)
        for line in lines:
            if not is_noise(line[:-1], patterns):
                write(line)
    if pending and not is_noise(pending, patterns):
        write(pending)


def _write_all(fd, data):
    """os.write until every byte of ``data`` is written (a pipe may take part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def tensorflow_start_filtered():
    """While active, file descriptor 2 drops TF_START_NOISE lines; everything else passes, in
    order. Without a usable fd 2 or interpreter, or with RINGNET_VERBOSE=1, it does nothing."""
    if os.environ.get(SHOW_ALL) == '1' or not sys.executable:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        # -I: no user site or PYTHON* variables; -S: no site packages (starts in ~20 ms)
        child = subprocess.Popen([sys.executable, '-I', '-S', os.path.abspath(__file__)],
                                 stdin=subprocess.PIPE, stdout=saved, stderr=saved)
    except OSError:
        os.close(saved)
        yield
        return
    os.dup2(child.stdin.fileno(), 2)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        child.stdin.close()  # the filter sees the end, writes what is left and exits
        child.wait()


if __name__ == '__main__':
    copy_filtered(lambda n: os.read(0, n), lambda data: _write_all(1, data))
