"""The output folder is the run's (issue #18 cases 1-4): one run at a time, nothing written
through a link inside it, a manifest that survives a full disk and tells the truth, and
--skip_existing that checks what the manifest recorded. Judged by exit status, messages and
the files on disk; runs use a stand-in network (tests/stand_in.py) since none of this is about
the network, and faults are injected (a pre-made link, a write that raises ENOSPC)."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import cv2
import pytest

from output_sets import files_under
from stand_in import result
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
HOST = socket.gethostname()


@pytest.fixture(scope='module')
def children(stand_in):
    return stand_in


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Four small photos a, b, c, d (crops of the sample: rendering them is quick)."""
    folder = tmp_path_factory.mktemp('photos')
    bgr = cv2.resize(cv2.imread(IMAGE), (96, 96))
    for k, name in enumerate('abcd'):
        cv2.imwrite(str(folder / (name + '.png')), bgr[k:, k:])
    return folder


def args(out, *names, images=None, extra=()):
    """Flags of a run on the photos ``names`` (a .txt list of them) into ``out``."""
    listing = out.parent / ('list-%s.txt' % ''.join(names))
    listing.write_text(''.join('%s\n' % (images / (n + '.png')) for n in names))
    return ['--img_path', str(listing), '--out_folder', str(out), '--save_obj_file=True',
            '--backend=tf'] + list(extra)


def manifest(out):
    with open(os.path.join(str(out), 'manifest.jsonl')) as fh:
        return [json.loads(line) for line in fh]


def outputs(*names):
    return sorted(['manifest.jsonl'] + ['images/%s.png' % n for n in names]
                  + ['mesh/%s.obj' % n for n in names])


def agrees_with_disk(out, records):
    """Every output a manifest record lists is on disk with the size it records."""
    for record in records:
        for rel, size in zip(record['outputs'], record['sizes']):
            assert os.path.getsize(os.path.join(str(out), rel)) == size, rel


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('error: ')]


def test_two_runs_into_one_folder_one_runs_the_other_is_refused_20_times(
        tmp_path, children, images):
    """Each time: started together, the run that takes the folder holds it while loading
    the network (until the other has ended); the other is refused in one line naming that
    process, before loading anything; the manifest and outputs are the winner's alone."""
    for k in range(20):
        base = tmp_path / str(k)
        base.mkdir()
        (base / 'hold').touch()
        out = base / 'out'
        sets = (('a',), ('a',)) if k % 2 else (('a',), ('b',))  # same inputs, or others
        procs = [children.start(args(out, *names, images=images), base) for names in sets]
        deadline = time.time() + 120
        while all(p.exitcode is None for p in procs):
            assert time.time() < deadline, 'neither run ended'
            time.sleep(0.005)
        (base / 'go').touch()
        for p in procs:
            p.join(120)
        [loser] = [i for i, p in enumerate(procs) if p.exitcode == 2]
        won = 1 - loser
        status, stdout, stderr, loaded = result(procs[loser], base)
        assert not loaded and stdout == ''
        assert re.fullmatch(
            r'error: %s: in use by process %d on host %s, started [-0-9: ]+; wait for that run '
            r'to end or choose another --out_folder\n' % (re.escape(str(out)), procs[won].pid,
                                                           re.escape(HOST)), stderr), stderr
        status, stdout, stderr, loaded = result(procs[won], base)
        assert status == 0 and loaded, stderr
        assert without_speed(stdout).splitlines() == ['1 of 1 input(s) done, outputs in %s' % out]
        records = manifest(out)
        assert [os.path.basename(r['input']) for r in records] == [
            n + '.png' for n in sets[won]]
        assert all(r['status'] == 'ok' for r in records)
        agrees_with_disk(out, records)
        assert files_under(out) == outputs(*sets[won])  # no lock file, no staging left


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over(tmp_path, children, images):
    out = tmp_path / 'out'
    out.mkdir()
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    (out / '.ringnet-lock').write_text(json.dumps({'host': HOST, 'pid': gone.pid,
                                                   'started': '2020-01-01 00:00:00'}))
    status, stdout, stderr, loaded = children.run(args(out, 'a', images=images), tmp_path)
    assert status == 0 and loaded, stderr
    assert stderr.splitlines() == [
        'note: %s: taking over the lock of process %d on host %s, started 2020-01-01 00:00:00, '
        'which is gone' % (out, gone.pid, HOST)]
    assert files_under(out) == outputs('a')


def test_a_lock_of_another_host_is_refused_with_how_to_clear_it(tmp_path, children, images):
    out = tmp_path / 'out'
    out.mkdir()
    lock = out / '.ringnet-lock'
    lock.write_text(json.dumps({'host': 'render-node-7', 'pid': 4242}))
    status, stdout, stderr, loaded = children.run(args(out, 'a', images=images), tmp_path)
    assert (status, loaded, stdout) == (2, False, '')
    assert stderr.splitlines() == [
        'error: %s: locked by process 4242 on host render-node-7; if that run is over, '
        'delete %s and run again' % (out, lock)]
    assert files_under(out) == ['.ringnet-lock']


@pytest.mark.parametrize('link', ['manifest.jsonl', 'mesh', 'images', '.ringnet-partial',
                                  'deep/er/mesh', '.ringnet-lock'])
def test_a_link_inside_the_output_folder_is_refused_before_the_network_loads(
        tmp_path, children, images, link):
    """The manifest, an output folder, the staging folder, a link at any depth: refused in
    one line naming it; the file or folder it points to is untouched."""
    out, elsewhere = tmp_path / 'out', tmp_path / 'elsewhere'
    elsewhere.mkdir()
    target = elsewhere / 'file' if link in ('manifest.jsonl', '.ringnet-lock') else elsewhere
    if target != elsewhere:
        target.write_text('precious\n')
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(target), str(out / link))
    status, stdout, stderr, loaded = children.run(args(out, 'a', images=images), tmp_path)
    assert (status, loaded, stdout) == (2, False, '')
    assert stderr.splitlines() == [
        'error: %s: is a symbolic link (nothing is written through a link inside the output '
        'folder; remove the link or choose another --out_folder)' % (out / link)]
    assert files_under(elsewhere) == (['file'] if target != elsewhere else [])
    if target != elsewhere:
        assert target.read_text() == 'precious\n'


LINK_LATER = '''
import os
import util.pipeline.command as command
real_load = command.load_backend

def load_backend(*args, **kwargs):  # once the folder is checked: OUT/mesh becomes a link
    os.symlink(os.path.join(folder, 'elsewhere'), os.path.join(folder, 'out', 'mesh'))
    return real_load(*args, **kwargs)

command.load_backend = load_backend
'''


def test_a_link_made_during_the_run_is_not_followed(tmp_path, children, images):
    """A sub-folder that becomes a link after the checks: the inputs that would write
    through it fail in one line each, nothing lands where it points, the run goes on."""
    out = tmp_path / 'out'
    (tmp_path / 'elsewhere').mkdir()
    status, stdout, stderr, loaded = children.run(args(out, 'a', 'b', images=images),
                                                  tmp_path, LINK_LATER)
    assert status == 1 and 'Traceback' not in stderr
    rule = ('%s: is a symbolic link (nothing is written through a link inside the output '
            'folder; remove the link or choose another --out_folder)' % (out / 'mesh'))
    assert error_lines(stderr) == ['error: %s: %s' % (images / n, rule) for n in ('a.png',
                                                                                   'b.png')]
    assert without_speed(stdout).splitlines() == ['0 of 2 input(s) done']
    assert files_under(tmp_path / 'elsewhere') == []
    assert files_under(out) == ['manifest.jsonl']  # the link's name is not a file
    assert [r['status'] for r in manifest(out)] == ['failed', 'failed']


FULL_DISK = '''
import errno, os
real_write, calls = os.write, []

def write(fd, data):  # the manifest's 2nd line: half of it gets through, then the disk is full
    try:
        target = os.readlink('/proc/self/fd/%d' % fd)
    except OSError:
        target = ''
    if target.endswith('manifest.jsonl'):
        calls.append(len(data))
        if len(calls) == 2:
            return real_write(fd, bytes(data)[:len(data) // 2])
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, 'No space left on device')
    return real_write(fd, data)

os.write = write
'''

FULL_AT_CLOSE = '''
import errno, os
real_fsync = os.fsync

def fsync(fd):  # the data reached the cache; the file system finds no room when it is flushed
    if os.readlink('/proc/self/fd/%d' % fd).endswith('manifest.jsonl'):
        raise OSError(errno.ENOSPC, 'No space left on device')
    return real_fsync(fd)

os.fsync = fsync
'''


def test_a_full_disk_while_writing_the_manifest_stops_the_run_with_a_true_summary(
        tmp_path, children, images):
    out = tmp_path / 'out'
    status, stdout, stderr, loaded = children.run(args(out, 'a', 'b', 'c', images=images),
                                                  tmp_path, FULL_DISK)
    assert status == 1 and 'Traceback' not in stderr
    assert error_lines(stderr) == [
        'error: %s: cannot write the run manifest (No space left on device); it lists the first '
        '1 input(s) of this run and the run stops' % (out / 'manifest.jsonl')]
    # b's outputs were written before its line failed; c never started
    assert without_speed(stdout).splitlines() == ['2 of 3 input(s) done, outputs in %s; stopped: the manifest '
                                   'could not be written' % out]
    records = manifest(out)  # whole lines only: the half line was cut off again
    assert [os.path.basename(r['input']) for r in records] == ['a.png']
    agrees_with_disk(out, records)
    assert files_under(out) == outputs('a', 'b')


def test_a_full_disk_when_the_manifest_closes_is_one_line_and_exit_1(tmp_path, children,
                                                                     images):
    out = tmp_path / 'out'
    status, stdout, stderr, loaded = children.run(args(out, 'a', 'b', images=images),
                                                  tmp_path, FULL_AT_CLOSE)
    assert status == 1 and 'Traceback' not in stderr
    assert error_lines(stderr) == [
        'error: %s: cannot finish writing the run manifest (No space left on device); its last '
        'lines may be lost' % (out / 'manifest.jsonl')]
    assert without_speed(stdout).splitlines() == ['2 of 2 input(s) done, outputs in %s; stopped: the manifest '
                                   'could not be written' % out]
    assert [r['status'] for r in manifest(out)] == ['ok', 'ok']  # the lines it had written


def test_skip_existing_redoes_an_input_whose_output_was_cut_short(tmp_path, children, images):
    out = tmp_path / 'out'
    status, stdout, stderr, _ = children.run(args(out, 'a', 'b', images=images), tmp_path)
    assert status == 0, stderr
    mesh_size = os.path.getsize(str(out / 'mesh' / 'a.obj'))
    (out / 'mesh' / 'a.obj').write_bytes(b'')  # truncated (a full disk, a crash elsewhere)
    status, stdout, stderr, loaded = children.run(
        args(out, 'a', 'b', images=images, extra=['--skip_existing']), tmp_path)
    assert status == 0 and loaded, stderr
    assert without_speed(stdout).splitlines() == ['1 of 2 input(s) done, 1 skipped (outputs already there), '
                                   'outputs in %s' % out]
    assert [(os.path.basename(r['input']), r['status']) for r in manifest(out)] == [
        ('b.png', 'skipped'), ('a.png', 'ok')]  # the skipped lines come first
    assert os.path.getsize(str(out / 'mesh' / 'a.obj')) == mesh_size
    agrees_with_disk(out, manifest(out))
