"""Memory running out while the model loads is said to be memory (issue #18 case 8): not a
"corrupt pickle" for an intact FLAME file, not an ImportError traceback for TensorFlow. The
fault is a memory limit (RLIMIT_AS) set in the child process just before the step."""
import os
import re
import subprocess
import sys

import pytest

resource = pytest.importorskip('resource')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')

LIMIT = r'''
import resource

def limit(margin):  # the address space this process has now, plus ``margin`` bytes
    with open('/proc/self/status') as fh:
        size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith('VmSize'))
    resource.setrlimit(resource.RLIMIT_AS, (size + margin, resource.RLIM_INFINITY))
'''

FLAME_HOOK = LIMIT + r'''
import util.outputs.context as context
real_load_model = context.load_model

def load_model(path):  # 8 MB to spare: FLAME's blend shapes alone are 36 MB
    limit(8 << 20)
    return real_load_model(path)

context.load_model = load_model
'''


def test_memory_running_out_while_loading_flame_is_not_a_corrupt_file(tmp_path, stand_in,
                                                                       flame_assets):
    out = tmp_path / 'out'
    status, stdout, stderr, _ = stand_in.run(['--img_path', IMAGE, '--out_folder', str(out)],
                                             tmp_path, FLAME_HOOK)
    assert status == 2 and 'Traceback' not in stderr, stderr
    [line] = stderr.splitlines()
    size = round(os.path.getsize(flame_assets['flame_model']) / 2 ** 20)
    assert re.fullmatch(r'error: %s: out of memory while loading it \(it needs at least %d MB; '
                        r'this process may use \d+ MB in all \(ulimit -v\)\)'
                        % (re.escape(flame_assets['flame_model']), size), line), line
    assert 'corrupt' not in line and stdout == ''


TF_DRIVER = LIMIT + r'''
import sys
import numpy as np
import demo
import util.pipeline.command  # noqa: F401 - all the command imports before TensorFlow
np.ones((64, 64)) @ np.ones((64, 64))  # OpenBLAS sets its buffers up first (it aborts if not)
limit(100 << 20)  # far less than TensorFlow's libraries map
sys.exit(demo.main(['demo'] + sys.argv[1:]))
'''


def test_memory_running_out_while_tensorflow_loads_is_one_line(tmp_path, checkpoint_v2,
                                                               flame_assets):
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, '-c', TF_DRIVER, '--img_path', IMAGE, '--out_folder',
                           str(out), '--backend=tf', '--load_path', checkpoint_v2,
                           '--flame_model_path', flame_assets['flame_model']],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error')]
    assert len(errors) == 1 and re.fullmatch(
        r'error: TensorFlow: out of memory while loading it \(this process may use \d+ MB in '
        r'all \(ulimit -v\)\)', errors[0]), proc.stderr[-2000:]
    assert not (out / 'images').exists()
