"""util/io/stderr_filter.py: TensorFlow's known start-up lines are dropped from file descriptor 2,
every other line passes; checked on the lines TensorFlow 2.21 printed here and on real runs
whose stderr is a terminal (a pty)."""
import os
import pty
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from util.io.stderr_filter import copy_filtered

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Copied from a terminal: `TF_CPP_MIN_LOG_LEVEL=0 python -c "import tensorflow"` (TF 2.21).
MEASURED_NOISE = [
    b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    b'I0000 00:00:1796403919.797425    7340 port.cc:153] oneDNN custom operations are on. You '
    b'may see slightly different numerical results due to floating-point round-off errors from '
    b'different computation orders. To turn them off, set the environment variable '
    b'`TF_ENABLE_ONEDNN_OPTS=0`.',
    b'I0000 00:00:1796403919.839155    7340 cpu_feature_guard.cc:227] This TensorFlow binary is '
    b'optimized to use available CPU instructions in performance-critical operations.',
    b'To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other '
    b'operations, rebuild TensorFlow with the appropriate compiler flags.',
]
REAL_LINES = [
    b'E0000 00:00:1796403919.797425    7340 cuda_dnn.cc:8310] Could not load library '
    b'libcudnn.so.9',
    b'Traceback (most recent call last):',
    b'ImportError: libcudart.so.12: cannot open shared object file',
    b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR '
    b'(and this one is not the notice)',
    b'  oneDNN custom operations are on. (indented: not the line TensorFlow prints)',
    b'',
]


def reads_of(data, sizes):
    """A read(n) function returning ``data`` in pieces of the given sizes, then b''."""
    pieces, start = [], 0
    for size in sizes:
        pieces.append(data[start:start + size])
        start += size
    pieces.append(data[start:])
    pieces = [p for p in pieces if p]
    return lambda n: pieces.pop(0) if pieces else b''


@pytest.mark.parametrize('seed', range(4))
def test_known_lines_are_dropped_and_the_rest_passes_in_order(seed):
    rng = np.random.default_rng(seed)
    lines = [(line, False) for line in REAL_LINES] + [(line, True) for line in MEASURED_NOISE * 2]
    order = rng.permutation(len(lines))
    text = b''.join(lines[k][0] + b'\n' for k in order)
    text += b'\r 10%|#   | 1/10\r 20%|##  | 2/10'          # a progress bar, no newline at the end
    expected = b''.join(lines[k][0] + b'\n' for k in order if not lines[k][1])
    expected += b'\r 10%|#   | 1/10\r 20%|##  | 2/10'
    out = []
    sizes = rng.integers(1, 40, size=len(text))            # lines split across reads anywhere
    copy_filtered(reads_of(text, sizes), out.append)
    assert b''.join(out) == expected


def run_on_terminal(code, env_extra):
    """Run ``python -c code`` with stdout and stderr on a pseudo-terminal -> (rc, text)."""
    env = {k: v for k, v in os.environ.items() if k != 'RINGNET_VERBOSE'}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='0', **env_extra)  # TF at its noisiest
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:       # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    rc = proc.wait(timeout=300)
    return rc, b''.join(chunks).replace(b'\r\n', b'\n').decode('utf-8', 'replace')


# The notices' shapes, looser than the filter's patterns (any text after the fixed start).
NOISE_SHAPES = [r'WARNING: All log messages before absl::InitializeLog\(\) is called.*',
                r'I\d+ [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*',
                r'I\d+ [\d:.]+ +\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary .*',
                r'To enable the following instructions: .*']


def noise_in(text):
    """The lines of ``text`` that look like one of the start-up notices."""
    return [line for line in text.splitlines()
            if any(re.fullmatch(shape, line) for shape in NOISE_SHAPES)]


# A TensorFlow run (the TF backend imports it through the filter), then an import that
# fails the way a broken CUDA install does: a line from C on fd 2, then ImportError.
TF_THEN_BROKEN_IMPORT = textwrap.dedent('''
    import os, sys
    from util.model import tf_backend
    print('TensorFlow', tf_backend.tf.__version__, 'loaded', file=sys.stderr, flush=True)
    from util.io.stderr_filter import tensorflow_start_filtered
    with tensorflow_start_filtered():
        os.write(2, b'E0000 cuda_dnn.cc:8310] Could not load library libcudnn.so.9\\n')
        raise ImportError('libcudart.so.12: cannot open shared object file')
''')


def test_a_tensorflow_run_on_a_terminal_shows_no_notices_but_shows_errors():
    rc, text = run_on_terminal(TF_THEN_BROKEN_IMPORT, {})
    assert rc == 1, text
    assert re.search(r'^TensorFlow 2\.\S+ loaded$', text, re.M), text
    assert noise_in(text) == [], text
    lines = text.splitlines()
    assert 'E0000 cuda_dnn.cc:8310] Could not load library libcudnn.so.9' in lines
    assert lines[-1] == 'ImportError: libcudart.so.12: cannot open shared object file', text
    assert 'Traceback (most recent call last):' in lines


def test_verbose_shows_the_notices():
    rc, text = run_on_terminal(TF_THEN_BROKEN_IMPORT, {'RINGNET_VERBOSE': '1'})
    assert rc == 1 and 'Could not load library libcudnn.so.9' in text, text
    if not noise_in(text):
        pytest.skip('this TensorFlow build prints none of the notices measured with 2.21')
    assert len(noise_in(text)) >= 2


def test_lines_written_just_before_an_abort_still_show():
    """An import that kills the interpreter (TensorFlow on a CPU without AVX aborts): what it
    wrote first reaches the terminal, because the filter is a process that outlives it."""
    code = textwrap.dedent('''
        import os
        from util.io.stderr_filter import tensorflow_start_filtered
        with tensorflow_start_filtered():
            os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are '
                        b'written to STDERR\\n')
            os.write(2, b'The TensorFlow library was compiled to use AVX instructions, but '
                        b'these are not available on your machine.\\n')
            os.abort()
    ''')
    rc, text = run_on_terminal(code, {})
    assert rc < 0, text                                    # killed by SIGABRT
    assert text.splitlines() == ['The TensorFlow library was compiled to use AVX instructions, '
                                 'but these are not available on your machine.'], text
