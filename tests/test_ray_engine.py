"""--engine=ray against the local engine: the same files byte for byte and the same manifest
rows (apart from timings), on a Ray started by the command and on a cluster started as a
separate process; a worker killed partway loses and duplicates nothing; the local engine never
imports Ray."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import pytest

from output_sets import files_under
from summary_line import rate_counts, speed_of, without_speed

ray = pytest.importorskip('ray')  # requirements-ray.txt; CI installs it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
RAY_CLI = [sys.executable, '-m', 'ray.scripts.scripts']  # `ray`, whatever is on PATH


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A folder of 7 images (crops and flips of the sample) and one that is not an image."""
    folder = tmp_path_factory.mktemp('ray_in')
    bgr = cv2.imread(IMAGE)
    for k in range(7):
        crop = bgr[4 * k:, 3 * k:]
        cv2.imwrite(str(folder / ('img%d.png' % k)), crop[:, ::-1] if k % 2 else crop)
    (folder / 'broken.jpg').write_bytes(b'not a jpeg')
    return folder


def command(folder, out, checkpoint_v2, flame_assets, *extra):
    return [sys.executable, '-m', 'demo', '--img_path', str(folder), '--out_folder', str(out),
            '--load_path', checkpoint_v2, '--flame_model_path', flame_assets['flame_model'],
            '--flame_texture_data_path', flame_assets['texture_data'],
            '--save_obj_file=True', '--save_flame_parameters=True',
            '--neutralize_expression=True', '--save_texture=True'] + list(extra)


def run(args, env=None, timeout=600):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def records(out):
    """The manifest rows without their timings, by input (Ray's come as inputs finish)."""
    with open(os.path.join(str(out), 'manifest.jsonl')) as fh:
        rows = [json.loads(line) for line in fh]
    for row in rows:
        row.pop('seconds')
    return sorted(rows, key=lambda row: row['input'])


def same_files(a, b):
    """Every file under a and b, byte for byte, the manifest apart."""
    names = [n for n in files_under(a) if n != 'manifest.jsonl']
    assert names == [n for n in files_under(b) if n != 'manifest.jsonl']
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    return names


@pytest.fixture(scope='module')
def local_run(inputs, tmp_path_factory, checkpoint_v2, flame_assets):
    out = tmp_path_factory.mktemp('local') / 'out'
    proc = run(command(inputs, out, checkpoint_v2, flame_assets))
    assert proc.returncode == 1, proc.stderr  # the broken image
    return out, proc


def check_like_local(out, proc, local_run):
    local_out, local_proc = local_run
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(same_files(out, local_out)) == 7 * 8  # every output of 7 images
    assert records(out) == records(local_out)
    error = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert error == [line for line in local_proc.stderr.splitlines()
                     if line.startswith('error: ')]
    line, local_line = proc.stdout.strip().splitlines()[-1], \
        local_proc.stdout.strip().splitlines()[-1]
    assert without_speed(line) == without_speed(local_line).replace(str(local_out), str(out))
    # both name what ran (the driver's conversion, shipped to the workers) and count 7 images
    assert speed_of(line)[2] == speed_of(local_line)[2] == 'ONNX Runtime fp32'
    assert rate_counts(line, 7) and rate_counts(local_line, 7)
    assert not (out / '.ringnet-partial').exists()
    # the report, from the manifest the driver wrote, like the local run's
    summary = json.loads((out / 'run.json').read_text())
    local_summary = json.loads((local_out / 'run.json').read_text())
    assert summary['engine'] == 'ray' and summary['counts'] == local_summary['counts'] == {
        'ok': 7, 'failed': 1, 'partial': 0, 'skipped': 0, 'not_done': 0}
    assert (out / 'report.html').read_text().count('<article class="row ') == 8


def test_ray_started_by_the_command_writes_what_the_local_engine_writes(
        inputs, tmp_path, checkpoint_v2, flame_assets, local_run):
    out = tmp_path / 'out'
    proc = run(command(inputs, out, checkpoint_v2, flame_assets, '--engine=ray',
                       '--ray_workers=2'), env={'RAY_ADDRESS': ''})
    check_like_local(out, proc, local_run)


@pytest.fixture()
def cluster(tmp_path):
    """A Ray head started as its own process (2 CPUs) -> its address; stopped afterwards.
    Since Ray 2.59 a local cluster wants its token: RAY_AUTH_MODE=token lets a client use
    the one `ray start` wrote."""
    port = 6400 + os.getpid() % 500
    start = subprocess.run(RAY_CLI + ['start', '--head', '--num-cpus=2', '--port=%d' % port,
                            '--include-dashboard=false', '--disable-usage-stats'],
                           capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield '127.0.0.1:%d' % port
    finally:
        subprocess.run(RAY_CLI + ['stop', '--force'], capture_output=True, timeout=120)


def test_ray_cluster_joined_by_address_writes_what_the_local_engine_writes(
        inputs, tmp_path, checkpoint_v2, flame_assets, local_run, cluster):
    out = tmp_path / 'out'
    proc = run(command(inputs, out, checkpoint_v2, flame_assets, '--engine=ray',
                       '--ray_address=%s' % cluster), env={'RAY_AUTH_MODE': 'token'})
    check_like_local(out, proc, local_run)


def worker_pids():
    """Pids of this machine's Ray Data map actors (their process title names the class),
    read from /proc (no pgrep needed)."""
    pids = []
    for entry in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as fh:
                if entry.isdigit() and b'MapWorker' in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def test_killed_worker_loses_and_duplicates_nothing(inputs, tmp_path, checkpoint_v2,
                                                     flame_assets, local_run):
    out = tmp_path / 'out'
    args = command(inputs, out, checkpoint_v2, flame_assets, '--engine=ray', '--ray_workers=2')
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, RAY_ADDRESS=''))
    deadline = time.time() + 300
    # wait until a worker has written something, then kill one (SIGKILL: no clean-up)
    while not (out / 'images').is_dir() or not os.listdir(out / 'images'):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'no output appeared'
        time.sleep(0.05)
    pids = worker_pids()
    assert pids, 'no Ray Data worker process found'
    os.kill(pids[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    rerun = None
    if proc.returncode != 1 or records(out) != records(local_run[0]):
        # the job gave up on the killed worker's rows: a rerun finishes the job
        rerun = run(args + ['--skip_existing'], env={'RAY_ADDRESS': ''})
    same_files(out, local_run[0])
    assert not (out / '.ringnet-partial').exists()
    print('killed worker %d; %s' % (pids[0], 'the job finished by itself' if rerun is None
                                    else 'a --skip_existing rerun finished the job'))
    if rerun is None:
        assert records(out) == records(local_run[0]), stderr[-3000:]


def test_local_engine_never_imports_ray(inputs, tmp_path, checkpoint_v2, flame_assets):
    probe = ('import sys, demo\n'
             'rc = demo.main(["demo"] + sys.argv[1:])\n'
             'print("ray imported:", any(m == "ray" or m.startswith("ray.") '
             'for m in sys.modules))\n')
    args = command(inputs / 'img0.png', tmp_path / 'out', checkpoint_v2, flame_assets)[3:]
    proc = subprocess.run([sys.executable, '-c', probe] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == 'ray imported: False'


def test_ray_missing_or_unreachable_is_one_line(inputs, tmp_path, checkpoint_v2, flame_assets):
    args = command(inputs / 'img0.png', tmp_path / 'out', checkpoint_v2, flame_assets)[3:]
    no_ray = ('import sys\nsys.modules["ray"] = None  # as if requirements-ray.txt were not '
              'installed\nimport demo\nsys.exit(demo.main(["demo"] + sys.argv[1:]))\n')
    proc = subprocess.run([sys.executable, '-c', no_ray] + args + ['--engine=ray'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('error: --engine=ray needs Ray (')
    assert proc.stderr.strip().endswith('pip install -r requirements-ray.txt')

    unreachable = run(command(inputs / 'img0.png', tmp_path / 'out2', checkpoint_v2,
                              flame_assets, '--engine=ray', '--ray_address=127.0.0.1:9'))
    assert unreachable.returncode == 2 and 'Traceback' not in unreachable.stderr
    errors = [line for line in unreachable.stderr.splitlines() if line.startswith('error: ')]
    assert errors == ['error: cannot join Ray at 127.0.0.1:9: it does not answer (Connection '
                      'refused); check the address and that the cluster is up'], \
        unreachable.stderr[-2000:]


def test_an_empty_address_starts_a_fresh_ray_whatever_a_stale_address_file_says(
        inputs, tmp_path, checkpoint_v2, flame_assets):
    """Issue #18 case 6: the address file of a cluster that is gone (Ray's temp folder, here
    a private one) is not joined: an empty --ray_address starts Ray for this run; and
    --ray_address=auto, which does join this machine's cluster, says in one line within 30 s
    that it is gone."""
    import tempfile
    ray_tmp = tempfile.mkdtemp(prefix='rt', dir='/tmp')  # short: Ray's socket paths go here
    os.makedirs(os.path.join(ray_tmp, 'ray'))
    with open(os.path.join(ray_tmp, 'ray', 'ray_current_cluster'), 'w') as fh:
        fh.write('127.0.0.1:9\n')  # nothing listens on the discard port
    env = {'RAY_ADDRESS': '', 'RAY_TMPDIR': ray_tmp}
    out = tmp_path / 'out'
    proc = run(command(inputs / 'img0.png', out, checkpoint_v2, flame_assets,
                       '--engine=ray', '--ray_workers=1'), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert without_speed(proc.stdout.strip().splitlines()[-1]) == '1 of 1 input(s) done, outputs in %s' % out

    start = time.time()
    auto = run(command(inputs / 'img0.png', tmp_path / 'auto', checkpoint_v2, flame_assets,
                       '--engine=ray', '--ray_address=auto'), env=env, timeout=120)
    assert time.time() - start < 30
    assert auto.returncode == 2 and 'Traceback' not in auto.stderr
    errors = [line for line in auto.stderr.splitlines() if line.startswith('error: ')]
    # Ray names the file's 127.0.0.1 by this machine's address
    assert len(errors) == 1 and re.fullmatch(
        r'error: cannot join Ray at auto \([0-9.]+:9\): it does not answer \(Connection refused\); '
        r'check the address and that the cluster is up, or leave --ray_address empty to start '
        r'Ray for this run', errors[0]), errors


def test_joining_a_token_cluster_without_its_token_says_what_to_set(
        inputs, tmp_path, checkpoint_v2, flame_assets, cluster):
    """Issue #18 case 7: `ray start` of Ray >= 2.59 wants a token; a run that joins it by
    address without RAY_AUTH_MODE=token fails within 30 s in one line that says so."""
    if tuple(int(p) for p in ray.__version__.split('.')[:2]) < (2, 59):
        pytest.skip('Ray before 2.59 has no token authentication')
    env = {k: v for k, v in os.environ.items() if k not in ('RAY_AUTH_MODE', 'RAY_AUTH_TOKEN')}
    start = time.time()
    proc = subprocess.run(command(inputs / 'img0.png', tmp_path / 'out', checkpoint_v2,
                                  flame_assets, '--engine=ray', '--ray_address=%s' % cluster),
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert time.time() - start < 30 + 15  # 30 s for Ray, the rest the interpreter's start
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and errors[0].startswith('error: cannot join Ray at %s: ' % cluster)
    assert errors[0].endswith('set RAY_AUTH_MODE=token (the token is read from RAY_AUTH_TOKEN '
                              'or ~/.ray/auth_token) and run again')
    assert not (tmp_path / 'out' / 'manifest.jsonl').exists() or \
        (tmp_path / 'out' / 'manifest.jsonl').read_text() == ''


def test_interrupted_ray_job_keeps_and_counts_the_rows_that_came_back(
        tmp_path, checkpoint_v2, flame_assets):
    """Issue #18 case 5: SIGINT while 2 workers run 24 inputs, once 6 are written: the
    workers write nothing more, the rows of what they wrote come back, and the manifest and
    the summary list exactly the output sets on disk."""
    folder = tmp_path / 'in'
    folder.mkdir()
    bgr = cv2.resize(cv2.imread(IMAGE), (96, 96))
    for k in range(24):
        cv2.imwrite(str(folder / ('p%02d.png' % k)), bgr[k % 7:, k // 7:])
    out = tmp_path / 'out'
    args = [sys.executable, '-m', 'demo', '--img_path', str(folder), '--out_folder', str(out),
            '--load_path', checkpoint_v2, '--flame_model_path', flame_assets['flame_model'],
            '--save_obj_file=True', '--engine=ray', '--ray_workers=2']
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, RAY_ADDRESS=''))

    def written():  # inputs whose every output is in place (a commit renames the mesh last)
        return {name[:-4] for name in os.listdir(out / 'mesh')} if (out / 'mesh').is_dir() \
            else set()

    deadline = time.time() + 400
    while len(written()) < 6:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'the job never wrote 6 inputs'
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130 and 'Traceback' not in stderr, stderr[-3000:]
    rows = records(out)
    assert all(row['status'] == 'ok' for row in rows)
    listed = {os.path.basename(row['input'])[:-4] for row in rows}
    assert len(rows) >= 6 and listed == written() and len(rows) < 24
    assert sorted(os.listdir(out / 'images')) == sorted(n + '.png' for n in listed)
    for row in rows:
        for rel, size in zip(row['outputs'], row['sizes']):
            assert os.path.getsize(os.path.join(str(out), rel)) == size
    assert without_speed(stdout.strip().splitlines()[-1]) == \
        '%d of 24 input(s) done, outputs in %s; interrupted' % (len(rows), out)
