"""Signals during a run: the image being written is finished (or, after SIGKILL, undone by the
next run), the summary line is printed, the exit status is 128 + signal, no traceback.

The rename window is made deterministic by a driver that wraps os.replace in the child
process: after the first output of image b is renamed into place it creates a marker file and
waits for a 'go' file, so the test signals exactly inside the window."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from output_sets import ALL_OUTPUT_FLAGS, files_under, outputs_of
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')

DRIVER = r'''
import os, sys, time
mark, go = sys.argv[1], sys.argv[2]
real_replace = os.replace

def replace(src, dst, **kw):  # the pipeline renames between folder descriptors
    real_replace(src, dst, **kw)
    folder = os.readlink('/proc/self/fd/%d' % kw['dst_dir_fd']) if 'dst_dir_fd' in kw else ''
    path = os.path.join(folder, dst)
    if path.endswith(os.path.join('images', 'b.png')) and not os.path.exists(go):
        open(mark, 'w').close()
        while not os.path.exists(go):  # hold the window open until the test says go
            time.sleep(0.005)

os.replace = replace
import demo
sys.exit(demo.main(['demo'] + sys.argv[3:]))
'''


@pytest.fixture()
def run_args(tmp_path, checkpoint_v2, flame_assets):
    folder = tmp_path / 'in'
    folder.mkdir()
    bgr = cv2.imread(IMAGE)
    for name, img in (('a', bgr), ('b', bgr[10:]), ('c', bgr[:, 10:])):
        cv2.imwrite(str(folder / (name + '.png')), img)
    out = tmp_path / 'out'
    return out, ['--img_path', str(folder), '--out_folder', str(out), '--load_path',
                 checkpoint_v2, '--flame_model_path', flame_assets['flame_model'],
                 '--flame_texture_data_path', flame_assets['texture_data']] + ALL_OUTPUT_FLAGS


def start_paused(tmp_path, args):
    mark, go = tmp_path / 'renaming', tmp_path / 'go'
    proc = subprocess.Popen([sys.executable, '-c', DRIVER, str(mark), str(go)] + args, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'the run never reached the rename window'
        time.sleep(0.01)
    return proc, go


@pytest.mark.parametrize('sig, status', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_in_the_rename_window_finishes_that_image(tmp_path, run_args, sig, status):
    out, args = run_args
    proc, go = start_paused(tmp_path, args)
    proc.send_signal(sig)
    time.sleep(0.2)  # let the main thread take the signal while the writer is still held
    go.touch()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    assert 'Traceback' not in stderr
    assert without_speed(stdout.strip().splitlines()[-1]) == \
        '2 of 3 input(s) done, outputs in %s; interrupted' % out
    assert files_under(out) == outputs_of('a', 'b')  # b finished, c never started writing
    summary = json.loads((out / 'run.json').read_text())  # the report of what was done
    assert summary['interrupted'] is True and summary['counts'] == {
        'ok': 2, 'failed': 0, 'partial': 0, 'skipped': 0, 'not_done': 1}
    assert (out / 'report.html').read_text().count('<article class="row ok"') == 2


def test_sigkill_in_the_rename_window_is_undone_by_the_next_run(tmp_path, run_args):
    out, args = run_args
    proc, go = start_paused(tmp_path, args)
    proc.kill()
    proc.wait()
    left = files_under(out)
    assert 'images/b.png' in left and 'mesh/b.obj' not in left  # a partial set, for now
    assert any(f.startswith('.ringnet-partial') for f in left)
    rerun = subprocess.run([sys.executable, '-m', 'demo'] + args, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert files_under(out) == outputs_of('a', 'b', 'c')


COUNTING_DRIVER = r'''
import sys
import util.pipeline.runner as pipeline
log, real_predict = sys.argv[1], pipeline.Pipeline.predict_frames

def predict_frames(self, frames):
    with open(log, 'a') as fh:
        fh.writelines(frame.name + '\n' for frame in frames)
    return real_predict(self, frames)

pipeline.Pipeline.predict_frames = predict_frames
import demo
sys.exit(demo.main(['demo'] + sys.argv[2:]))
'''


def manifest_records(out):
    with open(os.path.join(str(out), 'manifest.jsonl')) as fh:
        return [json.loads(line) for line in fh]


def test_rerun_with_skip_existing_does_only_the_rest(tmp_path, run_args):
    out, args = run_args
    proc, go = start_paused(tmp_path, args)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    go.touch()
    assert proc.communicate(timeout=120) and proc.returncode == 130
    # the interrupted run's manifest is true: a and b finished, c is not listed
    first = manifest_records(out)
    assert [(os.path.basename(r['input']), r['status']) for r in first] == [('a.png', 'ok'),
                                                                             ('b.png', 'ok')]
    before = {p: os.stat(os.path.join(str(out), p)).st_mtime_ns for p in files_under(out)
              if p != 'manifest.jsonl'}

    log = tmp_path / 'predicted.txt'
    rerun = subprocess.run([sys.executable, '-c', COUNTING_DRIVER, str(log)] + args
                           + ['--skip_existing'], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert log.read_text().split() == ['c']  # the network ran for the missing input only
    assert without_speed(rerun.stdout.strip().splitlines()[-1]) == \
        '1 of 3 input(s) done, 2 skipped (outputs already there), outputs in %s' % out
    assert files_under(out) == outputs_of('a', 'b', 'c')  # no partial file anywhere
    assert all(os.stat(os.path.join(str(out), p)).st_mtime_ns == t for p, t in before.items())
    second = manifest_records(out)
    assert [(os.path.basename(r['input']), r['status']) for r in second] == [
        ('a.png', 'skipped'), ('b.png', 'skipped'), ('c.png', 'ok')]
    for record in second:  # the manifest agrees with the files on disk
        assert all(os.path.isfile(os.path.join(str(out), p)) for p in record['outputs'])
    assert sorted([p for r in second for p in r['outputs']] + ['manifest.jsonl']) == \
        files_under(out)

    # nothing left: the network is never loaded (a checkpoint path that does not exist is fine)
    args_no_model = [a if a != args[args.index('--load_path') + 1] else str(tmp_path / 'none')
                     for a in args]
    third = subprocess.run([sys.executable, '-c', COUNTING_DRIVER, str(log)] + args_no_model
                           + ['--skip_existing'], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert third.returncode == 0, third.stderr
    assert log.read_text().split() == ['c']
    assert [r['status'] for r in manifest_records(out)] == ['skipped'] * 3


def test_skip_existing_after_sigkill_redoes_the_half_written_image(tmp_path, run_args):
    out, args = run_args
    proc, go = start_paused(tmp_path, args)
    proc.kill()
    proc.wait()
    assert 'images/b.png' in files_under(out) and 'mesh/b.obj' not in files_under(out)
    rerun = subprocess.run([sys.executable, '-m', 'demo'] + args + ['--skip_existing'],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert files_under(out) == outputs_of('a', 'b', 'c')
    assert [(os.path.basename(r['input']), r['status']) for r in manifest_records(out)] == [
        ('a.png', 'skipped'), ('b.png', 'ok'), ('c.png', 'ok')]


CLIP_DRIVER = r'''
import os, sys, time
import util.io.video_io as video_io
mark, go = sys.argv[1], sys.argv[2]
real_write, written = video_io.VideoWriter.write, []

def write(self, rgb):
    real_write(self, rgb)
    written.append(1)
    if len(written) == 10:  # hold the clip open at its 10th frame until the test says go
        open(mark, 'w').close()
        while not os.path.exists(go):
            time.sleep(0.005)

video_io.VideoWriter.write = write
import demo
sys.exit(demo.main(['demo'] + sys.argv[3:]))
'''


def test_interrupted_clip_leaves_no_output_and_is_done_by_the_rerun(tmp_path, checkpoint_v2,
                                                                     flame_assets):
    """SIGINT in the middle of a video: none of its outputs appear (not even the frames done),
    nothing is left in the staging folder; --skip_existing then does the whole clip."""
    clip = str(tmp_path / 'clip.avi')
    bgr = cv2.resize(cv2.imread(IMAGE), (160, 120))
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*'MJPG'), 25.0, (160, 120))
    for k in range(30):
        writer.write(np.roll(bgr, k, axis=1))
    writer.release()
    out = tmp_path / 'out'
    args = ['--img_path', clip, '--out_folder', str(out), '--load_path', checkpoint_v2,
            '--flame_model_path', flame_assets['flame_model'], '--save_obj_file=True',
            '--save_flame_parameters=True']
    mark, go = tmp_path / 'held', tmp_path / 'go'
    proc = subprocess.Popen([sys.executable, '-c', CLIP_DRIVER, str(mark), str(go)] + args,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, 'the run never reached the 10th frame'
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    go.touch()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert 'Traceback' not in stderr
    assert without_speed(stdout.strip().splitlines()[-1]) == '0 of 1 input(s) done; interrupted'
    assert files_under(out) == ['manifest.jsonl'] and manifest_records(out) == []

    rerun = subprocess.run([sys.executable, '-m', 'demo'] + args + ['--skip_existing'],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    track = np.load(str(out / 'params' / 'clip.npz'))
    assert track['frame'].tolist() == list(range(30)) and track['found'].all()
    assert files_under(out) == sorted(['manifest.jsonl', 'params/clip.npz', 'params/clip.json',
                                       'video/clip.mp4']
                                      + ['mesh/clip/%06d.obj' % k for k in range(30)])


FAILING_WRITER_DRIVER = r'''
import sys
import util.io.video_io as video_io
real_write, written = video_io.VideoWriter.write, []

def write(self, rgb):
    written.append(1)
    if len(written) == 6:  # the 6th frame of the first clip: the disk is full
        raise OSError(28, 'No space left on device')
    real_write(self, rgb)

video_io.VideoWriter.write = write
import demo
sys.exit(demo.main(['demo'] + sys.argv[1:]))
'''


def test_a_frame_that_cannot_be_written_cuts_the_clip_short_and_the_batch_goes_on(
        tmp_path, checkpoint_v2, flame_assets):
    folder = tmp_path / 'in'
    folder.mkdir()
    bgr = cv2.resize(cv2.imread(IMAGE), (160, 120))
    for name in ('a', 'b'):
        writer = cv2.VideoWriter(str(folder / (name + '.avi')), cv2.VideoWriter_fourcc(*'MJPG'),
                                 25.0, (160, 120))
        for k in range(12):
            writer.write(np.roll(bgr, k, axis=1))
        writer.release()
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, '-c', FAILING_WRITER_DRIVER, '--img_path',
                           str(folder), '--out_folder', str(out), '--load_path', checkpoint_v2,
                           '--flame_model_path', flame_assets['flame_model'],
                           '--save_obj_file=True'], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert errors == ['error: %s: [Errno 28] No space left on device' % (folder / 'a.avi')]
    records = manifest_records(out)
    assert [(r['status'], r['frames']) for r in records] == [('partial', 5), ('ok', 12)]
    track = np.load(str(out / 'params' / 'a.npz'))
    assert track['frame'].tolist() == list(range(5))
    assert sorted(os.listdir(out / 'mesh' / 'a')) == ['%06d.obj' % k for k in range(5)]
    assert without_speed(proc.stdout.strip().splitlines()[-1]).startswith(
        '1 of 2 input(s) done, 1 cut short (their frames kept), outputs in ')
    assert not (out / '.ringnet-partial').exists()
