"""Input forms of --img_path (file, folder, --recursive, glob, .txt list) and the progress bar."""
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios

import cv2
import pytest

from output_sets import files_under
from util.pipeline.sources import InputError, input_entries

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
    assert rel(input_entries(str(tree / '**' / '*.jpg')), tree) == [
        ('a.jpg', 'a'), ('sub/a.jpg', 'a'), ('sub/deeper/c.jpg', 'c')]
    with pytest.raises(InputError, match='no image file matches this pattern'):
        input_entries(str(tree / '*.gif'))
    listing = tree / 'list.txt'
    listing.write_text('# images\nb.png\n\nsub/deeper/c.jpg\nmissing.jpg\n%s\n' % (tree / 'a.jpg'))
    assert rel(input_entries(str(listing)), tree) == [
        ('b.png', 'b'), ('sub/deeper/c.jpg', 'c'), ('missing.jpg', 'missing'), ('a.jpg', 'a')]
    empty = tmp_path / 'empty.txt'
    empty.write_text('# nothing\n')
    with pytest.raises(InputError, match='names no images'):
        input_entries(str(empty))


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
    assert proc.stderr.strip() == 'error: %s: no image file matches this pattern' % (
        root / '*.webp')


@pytest.mark.parametrize('columns', [100, 0])  # 0: a terminal that reports no size
def test_progress_bar_on_a_terminal_only(tmp_path, cache, columns):
    folder = tmp_path / 'in'
    folder.mkdir()
    img = cv2.imread(IMAGE)
    for k in range(3):
        cv2.imwrite(str(folder / ('%d.png' % k)), img[k:])
    args = [sys.executable, '-m', 'demo'] + demo_args(tmp_path / 'o1', '--img_path', str(folder))
    env = dict(os.environ, RINGNET_CACHE_DIR=str(cache))
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b''
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(master)
    text = seen.decode('utf-8', 'replace')
    assert proc.returncode == 0
    assert '3/3' in text and 'image/s' in text and '\r' in text, text[-2000:]

    piped = run(demo_args(tmp_path / 'o2', '--img_path', str(folder)), cache)
    assert piped.returncode == 0
    assert '/3' not in piped.stderr and '\r' not in piped.stderr
    assert piped.stdout.strip().splitlines()[-1].startswith('3 of 3 image(s) done')
    records = [json.loads(line) for line in open(tmp_path / 'o2' / 'manifest.jsonl')]
    assert [r['status'] for r in records] == ['ok'] * 3
