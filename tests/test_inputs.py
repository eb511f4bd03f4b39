"""Input forms of --img_path (file, folder, --recursive, glob, .txt list) and the progress bar."""
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import cv2
import numpy as np
import pytest

from output_sets import files_under
from util.pipeline.inputs import Entry, InputError, clashing, input_entries
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')


@pytest.fixture()
def tree(tmp_path):
    """in/a.jpg, in/b.png, in/sub/a.jpg, in/sub/deeper/c.jpg, in/.hidden/d.jpg, in/notes.md"""
    root = tmp_path / 'in'
    for rel in ('a.jpg', 'b.png', 'sub/a.jpg', 'sub/deeper/c.jpg', '.hidden/d.jpg'):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b'x')
    (root / 'notes.md').write_text('not an image')
    return root


def rel(entries, root):
    return [(os.path.relpath(e.path, str(root)), e.name) for e in entries]


def test_folder_and_recursive(tree):
    assert rel(input_entries(str(tree)), tree) == [('a.jpg', 'a'), ('b.png', 'b')]
    assert rel(input_entries(str(tree), recursive=True), tree) == [
        ('a.jpg', 'a'), ('b.png', 'b'), ('sub/a.jpg', 'sub/a'), ('sub/deeper/c.jpg',
                                                                 'sub/deeper/c')]


def test_glob_and_list_file(tree, tmp_path):
    assert rel(input_entries(str(tree / '*.jpg')), tree) == [('a.jpg', 'a')]
    # NAMEs keep the sub-folders below the pattern's fixed part, as with --recursive
    assert rel(input_entries(str(tree / '**' / '*.jpg')), tree) == [
        ('a.jpg', 'a'), ('sub/a.jpg', 'sub/a'), ('sub/deeper/c.jpg', 'sub/deeper/c')]
    with pytest.raises(InputError, match='no image or video file matches this pattern'):
        input_entries(str(tree / '*.gif'))
    listing = tree / 'list.txt'
    listing.write_text('# images\nb.png\n\nsub/deeper/c.jpg\nmissing.jpg\n%s\n' % (tree / 'a.jpg'))
    assert rel(input_entries(str(listing)), tree) == [
        ('b.png', 'b'), ('sub/deeper/c.jpg', 'c'), ('missing.jpg', 'missing'), ('a.jpg', 'a')]
    bom = tree / 'bom.txt'  # saved by a Windows editor: a byte-order mark first
    bom.write_bytes(b'\xef\xbb\xbfb.png\r\na.jpg\r\n')
    assert rel(input_entries(str(bom)), tree) == [('b.png', 'b'), ('a.jpg', 'a')]
    empty = tmp_path / 'empty.txt'
    empty.write_text('# nothing\n')
    with pytest.raises(InputError, match='names no inputs'):
        input_entries(str(empty))


def test_the_output_folder_is_never_an_input(tree):
    (tree / 'out' / 'images').mkdir(parents=True)
    (tree / 'out' / 'images' / 'a.png').write_bytes(b'x')
    for entries in (input_entries(str(tree), recursive=True, exclude=str(tree / 'out')),
                    input_entries(str(tree / '**' / '*.png'), exclude=str(tree / 'out'))):
        assert not [e for e in entries if 'out' in e.path.split(os.sep)]


def test_clashing_names_are_found_before_anything_runs(tree):
    entries = input_entries(str(tree / '**' / 'a.*'))  # a.jpg, sub/a.jpg: different NAMEs
    assert clashing(entries) == {}
    (tree / 'a.png').write_bytes(b'x')
    entries = input_entries(str(tree))
    assert [e.name for e in entries] == ['a', 'a', 'b']
    assert clashing(entries) == {1: entries[0]}


def demo_args(out, *extra):
    return ['--demo', '--out_folder', str(out)] + list(extra)


def run(args, cache, **kw):
    env = dict(os.environ, RINGNET_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, '-m', 'demo'] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('cache')


def test_list_with_a_missing_path_and_recursive_outputs(tmp_path, cache):
    root = tmp_path / 'in'
    (root / 'x').mkdir(parents=True)
    (root / 'y').mkdir()
    img = cv2.imread(IMAGE)
    cv2.imwrite(str(root / 'x' / 'face.png'), img)
    cv2.imwrite(str(root / 'y' / 'face.png'), img[10:])
    listing = tmp_path / 'list.txt'
    listing.write_text('in/x/face.png\nin/nope.png\n')
    out = tmp_path / 'out'
    proc = run(demo_args(out, '--img_path', str(listing)), cache)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and str(tmp_path / 'in' / 'nope.png') in errors[0]
    assert files_under(out) == ['images/face.png', 'manifest.jsonl']

    out2 = tmp_path / 'out2'
    proc = run(demo_args(out2, '--img_path', str(root), '--recursive'), cache)
    assert proc.returncode == 0, proc.stderr
    assert files_under(out2) == ['images/x/face.png', 'images/y/face.png', 'manifest.jsonl']

    proc = run(demo_args(out2, '--img_path', str(root / '*.webp')), cache)
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'error: %s: no image or video file matches this pattern' % (
        root / '*.webp')


def screen(text):
    """What a terminal shows after ``text``: carriage return, newline, cursor up (ESC[nA) and
    erase-line (ESC[K) applied; every other character overwrites the cell under the cursor."""
    rows, row, col, i = [[]], 0, 0, 0
    while i < len(text):
        csi = re.match(r'\x1b\[(\d*)([A-Za-z])', text[i:])
        if csi:
            if csi.group(2) == 'A':
                row = max(0, row - int(csi.group(1) or 1))
            elif csi.group(2) == 'K':
                del rows[row][col:]
            i += len(csi.group(0))
            continue
        ch = text[i]
        if ch == '\r':
            col = 0
        elif ch == '\n':
            row += 1
            rows += [[] for _ in range(row + 1 - len(rows))]
        else:
            line = rows[row]
            line += [' '] * (col + 1 - len(line))
            line[col] = ch
            col += 1
        i += 1
    return [''.join(r).rstrip() for r in rows]


def run_on_terminal(args, env, columns):
    """Run ``args`` with stderr on a pseudo-terminal of ``columns`` (0: no size reported)
    -> (return code, everything written to the terminal)."""
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b''
    while select.select([master], [], [], 120)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, seen.decode('utf-8', 'replace')


@pytest.mark.parametrize('columns', [100, 0])  # 0: a terminal that reports no size
def test_progress_bar_on_a_terminal_only(tmp_path, cache, columns):
    folder = tmp_path / 'in'
    folder.mkdir()
    img = cv2.imread(IMAGE)
    for k in range(3):
        cv2.imwrite(str(folder / ('%d.png' % k)), img[k:])
    (folder / '1a.png').write_text('not an image')  # an error line while the bar is shown
    args = [sys.executable, '-m', 'demo'] + demo_args(tmp_path / 'o1', '--img_path', str(folder))
    rc, text = run_on_terminal(args, dict(os.environ, RINGNET_CACHE_DIR=str(cache)), columns)
    assert rc == 1
    assert '4/4' in text and 'image/s' in text and '\r' in text, text[-2000:]
    shown = screen(text)
    error = [line for line in shown if line.startswith('error: ')]
    assert len(error) == 1 and error[0].startswith('error: %s: ' % (folder / '1a.png')), shown
    assert '4/4' in [line for line in shown if line][-1]  # the bar, finished, at the bottom

    piped = run(demo_args(tmp_path / 'o2', '--img_path', str(folder)), cache)
    assert piped.returncode == 1
    assert '/4' not in piped.stderr and '\r' not in piped.stderr
    assert piped.stdout.strip().splitlines()[-1].startswith('3 of 4 input(s) done')
    records = [json.loads(line) for line in open(tmp_path / 'o2' / 'manifest.jsonl')]
    assert [r['status'] for r in records] == ['ok', 'ok', 'failed', 'ok']

    quiet_args = [sys.executable, '-m', 'demo'] + demo_args(tmp_path / 'o3', '--img_path',
                                                            str(folder), '--quiet')
    rc, quiet = run_on_terminal(quiet_args, dict(os.environ, RINGNET_CACHE_DIR=str(cache)),
                                columns)
    assert rc == 1 and '/4' not in quiet and 'image/s' not in quiet
    assert '3 of 4 input(s) done' not in quiet  # the summary goes to stdout, not the terminal


def test_progress_bar_counts_a_videos_frames(tmp_path, cache):
    """A photo and a 24-frame clip: the bar ends at 25/25 in frames (the clip's count is
    known once it opens), with a rate in frames per second."""
    folder = tmp_path / 'in'
    folder.mkdir()
    img = cv2.imread(IMAGE)
    cv2.imwrite(str(folder / 'a.png'), img)
    writer = cv2.VideoWriter(str(folder / 'b.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 25.0,
                             (128, 96))
    for k in range(24):
        writer.write(cv2.resize(np.roll(img, 3 * k, axis=1), (128, 96)))
    writer.release()
    args = [sys.executable, '-m', 'demo'] + demo_args(tmp_path / 'o', '--img_path', str(folder))
    rc, text = run_on_terminal(args, dict(os.environ, RINGNET_CACHE_DIR=str(cache)), 100)
    assert rc == 0, text[-2000:]
    last = [line for line in screen(text) if line][-1]
    assert '25/25' in last and 'frame/s' in last, last


def test_skip_existing_never_hides_a_clash_or_a_mode_change(tmp_path, cache):
    folder = tmp_path / 'in'
    folder.mkdir()
    img = cv2.imread(IMAGE)
    cv2.imwrite(str(folder / 'a.jpg'), img)
    cv2.imwrite(str(folder / 'a.png'), img[5:])
    out = tmp_path / 'out'
    first = run(demo_args(out, '--img_path', str(folder)), cache)
    second = run(demo_args(out, '--img_path', str(folder), '--skip_existing'), cache)
    for proc in (first, second):
        assert proc.returncode == 1
        errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
        assert errors == ['error: %s: outputs would overwrite those of %s (same name a)'
                          % (folder / 'a.png', folder / 'a.jpg')]
    records = [json.loads(line) for line in open(out / 'manifest.jsonl')]
    assert [(os.path.basename(r['input']), r['status']) for r in records] == [
        ('a.jpg', 'skipped'), ('a.png', 'failed')]


def test_existing_outputs_of_the_other_mode_are_not_reused(tmp_path):
    from config import default_config
    from util.pipeline.resume import existing_outputs
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'x.png').write_bytes(b'panel')
    plain, detect = default_config(), default_config(detect_faces=True)
    made = {'outputs': ['images/x.png'], 'sizes': [5]}
    assert existing_outputs(str(tmp_path), 'x', plain, dict(made, faces=None)) == (
        {'images/x.png': 5}, None)
    # the last run's manifest says whether the panel came with --detect_faces
    assert existing_outputs(str(tmp_path), 'x', detect, dict(made, faces=None)) is None
    assert existing_outputs(str(tmp_path), 'x', detect, dict(made, faces=2)) == (
        {'images/x.png': 5}, 2)
    assert existing_outputs(str(tmp_path), 'x', plain, dict(made, faces=2)) is None
    # no record of the run that made it, or one of another size: not proven whole
    assert existing_outputs(str(tmp_path), 'x', plain) is None
    assert existing_outputs(str(tmp_path), 'x', plain, {'faces': None,
                                                        'outputs': ['images/x.png']}) is None
    assert existing_outputs(str(tmp_path), 'x', plain, dict(made, faces=None,
                                                            sizes=[6])) is None


def test_a_finished_clip_is_skipped_only_with_every_requested_output(tmp_path):
    from config import default_config
    from util.pipeline.resume import clip_settings, finished_outputs
    listed = ['params/c_face0.npz', 'params/c_face1.npz', 'video/c.mp4',
              'mesh/c_face0/000000.obj', 'mesh/c_face1/000004.obj']
    for rel in listed + ['params/c_face0.json']:  # a JSON nobody listed: not evidence
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b'x')
    detect = default_config(detect_faces=True, max_faces=2)
    settings = clip_settings(detect)
    previous = {'status': 'ok', 'faces': 2, 'frames': 9, 'frames_with_face': 7,
                'outputs': listed, 'sizes': [1] * len(listed), 'settings': settings}
    video = {'frames': 9, 'frames_with_face': 7, 'settings': settings}
    sizes = {rel.replace('/', os.sep): 1 for rel in listed}
    out = str(tmp_path)
    assert finished_outputs(out, 'c', detect, previous) == (sizes, 2, video)
    assert finished_outputs(out, 'c', default_config(detect_faces=True, save_obj_file=True,
                                                     max_faces=2), previous) == (sizes, 2, video)
    # a flag that changes what is inside the outputs (here: the npz's landmarks)
    assert finished_outputs(out, 'c', default_config(detect_faces=True, max_faces=2,
                                                     save_landmarks=True), previous) is None
    # asked for more than the last run wrote, or made in the other mode, or not finished
    assert finished_outputs(out, 'c', default_config(detect_faces=True, max_faces=2,
                                                     save_flame_parameters=True), previous) is None
    assert finished_outputs(out, 'c', default_config(), previous) is None
    assert finished_outputs(out, 'c', detect, dict(previous, status='partial')) is None
    # a listed output cut short
    (tmp_path / 'video' / 'c.mp4').write_bytes(b'')
    assert finished_outputs(out, 'c', detect, previous) is None
    (tmp_path / 'video' / 'c.mp4').write_bytes(b'x')
    # a listed output that is gone
    (tmp_path / 'mesh' / 'c_face1' / '000004.obj').unlink()
    assert finished_outputs(out, 'c', detect, previous) is None


def test_manifest_path_taken_by_a_folder_is_one_line(tmp_path, cache):
    out = tmp_path / 'out'
    (out / 'manifest.jsonl').mkdir(parents=True)
    proc = run(demo_args(out, '--img_path', IMAGE), cache)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'manifest.jsonl' in errors[0]


def test_csv_and_parquet_tables_of_paths(tmp_path):
    """A table's 'path' column, relative paths from the table's folder; read back here with
    the csv module's writer and pyarrow's writer."""
    import csv
    (tmp_path / 'sub').mkdir()
    with open(tmp_path / 'list.csv', 'w', newline='') as fh:
        csv.writer(fh).writerows([['label', 'path'], ['1', 'a.jpg'], ['2', 'sub/b c.png'],
                                  ['3', str(tmp_path / 'd.webp')], ['4', '007.png']])
    assert input_entries(str(tmp_path / 'list.csv')) == [
        Entry(str(tmp_path / 'a.jpg'), 'a'), Entry(str(tmp_path / 'sub' / 'b c.png'), 'b_c'),
        Entry(str(tmp_path / 'd.webp'), 'd'), Entry(str(tmp_path / '007.png'), '007')]
    pq = pytest.importorskip('pyarrow.parquet')
    import pyarrow
    pq.write_table(pyarrow.table({'id': [7, 8], 'path': ['a.jpg', 'clip.mp4']}),
                   str(tmp_path / 'list.parquet'))
    assert input_entries(str(tmp_path / 'list.parquet')) == [
        Entry(str(tmp_path / 'a.jpg'), 'a'), Entry(str(tmp_path / 'clip.mp4'), 'clip')]
    # integers are file names written as decimals, never '1.0'
    pq.write_table(pyarrow.table({'path': pyarrow.array([1, 22], pyarrow.int64())}),
                   str(tmp_path / 'ints.parquet'))
    assert [e.path for e in input_entries(str(tmp_path / 'ints.parquet'))] == [
        str(tmp_path / '1'), str(tmp_path / '22')]
    pq.write_table(pyarrow.table({'path': [1.0, 2.5]}), str(tmp_path / 'floats.parquet'))
    with pytest.raises(InputError, match="floats.parquet: its 'path' column holds double "
                                         r"values, not text \(file paths\)"):
        input_entries(str(tmp_path / 'floats.parquet'))
    (tmp_path / 'bad.parquet').write_bytes(b'not parquet')
    with pytest.raises(InputError, match='bad.parquet: cannot read this list of paths'):
        input_entries(str(tmp_path / 'bad.parquet'))


def test_a_table_without_a_path_column_is_refused_naming_its_columns(tmp_path, capsys):
    """Issue #18 case 9: no first column taken instead; exit 2, nothing made."""
    import demo
    (tmp_path / 'first.csv').write_text('file,label\nx.png,1\n')
    tables = [tmp_path / 'first.csv']
    pq = pytest.importorskip('pyarrow.parquet')
    import pyarrow
    pq.write_table(pyarrow.table({'file': ['x.png'], 'id': [3]}), str(tmp_path / 'first.parquet'))
    tables.append(tmp_path / 'first.parquet')
    for table in tables:
        out = tmp_path / ('out' + table.suffix)
        status = demo.main(['demo', '--img_path', str(table), '--out_folder', str(out)])
        err = capsys.readouterr().err.splitlines()
        assert status == 2 and not out.exists()
        assert err == ["error: %s: no 'path' column (its columns: 'file', %s); name the column "
                       "of paths 'path'" % (table, "'label'" if table.suffix == '.csv' else "'id'")]


def test_a_table_row_without_a_path_is_one_error_line(tmp_path, stand_in):
    """A null (Parquet) or empty cell (CSV) is that row's error; the other rows run."""
    pq = pytest.importorskip('pyarrow.parquet')
    import pyarrow
    cv2.imwrite(str(tmp_path / 'a.png'), cv2.resize(cv2.imread(IMAGE), (96, 96)))
    cv2.imwrite(str(tmp_path / '12.png'), cv2.resize(cv2.imread(IMAGE), (90, 90)))
    pq.write_table(pyarrow.table({'path': ['a.png', None, '12.png']}),
                   str(tmp_path / 'rows.parquet'))
    (tmp_path / 'rows.csv').write_text('path,label\na.png,1\n,2\n12.png,3\n')
    for table, kind in (('rows.parquet', 'null'), ('rows.csv', 'empty')):
        out = tmp_path / ('out-' + table)
        status, stdout, stderr, _ = stand_in.run(
            ['--img_path', str(tmp_path / table), '--out_folder', str(out)], tmp_path)
        assert status == 1, stderr
        assert [line for line in stderr.splitlines() if line.startswith('error')] == [
            "error: %s row 2: no path in its 'path' column (%s)" % (tmp_path / table, kind)]
        assert without_speed(stdout).splitlines() == ['2 of 3 input(s) done, outputs in %s' % out]
        records = [json.loads(line) for line in open(out / 'manifest.jsonl')]
        assert [(r['input'], r['status']) for r in records] == [
            (str(tmp_path / 'a.png'), 'ok'), ('%s row 2' % (tmp_path / table), 'failed'),
            (str(tmp_path / '12.png'), 'ok')]
        assert files_under(out) == ['images/12.png', 'images/a.png', 'manifest.jsonl']
