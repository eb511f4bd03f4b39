"""A folder of good and bad inputs, damaged model files and unwritable outputs, as a careless or
unlucky user would give them: exit codes, one-line errors naming the file, and the exact set of
files on disk afterwards (no partial output set, no temporary)."""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from output_sets import ALL_OUTPUT_FLAGS, files_under, outputs_of
from util.io.image_io import ImageError, load_image
from summary_line import without_speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')


def png_header_only(width, height):
    """A PNG that claims width x height grey pixels (valid signature, IHDR with CRC, one empty
    IDAT, IEND): a decompression bomb as far as any header check can tell."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b''))
            + chunk(b'IEND', b''))


def encoded(array, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """in/: good files, files that already worked, and every case that used to break."""
    folder = tmp_path_factory.mktemp('corpus')
    rgb = cv2.imread(IMAGE)[..., ::-1]
    jpeg = encoded(rgb, 'JPEG', quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    files = {
        # good, and kinds that already worked
        b'good.jpg': jpeg,
        b'tiny.png': encoded(rgb[:1, :1], 'PNG'),
        b'gray16.png': cv2.imencode('.png', (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(
            np.uint16) * 257))[1].tobytes(),
        b'rgba.png': encoded(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), 'PNG'),
        b'gray.png': encoded(rgb[..., 0], 'PNG'),
        b'cmyk.jpg': _cmyk(rgb),
        b'anim.gif': encoded(rgb, 'GIF'),
        b'photo.webp': encoded(rgb, 'WEBP'),
        b'pages.tiff': _multipage(rgb),
        b'phone.jpg': _with_exif(rgb, exif),
        b'new\nline.png': encoded(rgb, 'PNG'),     # a newline in the name
        b'caf\xe9.png': encoded(rgb, 'PNG'),       # Latin-1, not valid UTF-8
        # bad
        b'zero.jpg': b'',
        b'text.png': b'this is not an image\n',
        b'thin.png': encoded(np.zeros((5000, 3, 3), np.uint8), 'PNG'),
        b'truncated.jpg': jpeg[:len(jpeg) * 3 // 10],
        b'bomb.png': png_header_only(16000, 16000),
    }
    for name, data in files.items():
        with open(os.path.join(os.fsencode(folder), name), 'wb') as fh:
            fh.write(data)
    os.symlink(str(folder / 'nowhere.jpg'), str(folder / 'dangling.jpg'))
    (folder / 'x.jpg').mkdir()
    return folder


def _cmyk(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).convert('CMYK').save(buf, 'JPEG')
    return buf.getvalue()


def _multipage(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, 'TIFF', save_all=True,
                              append_images=[Image.fromarray(rgb[::-1])])
    return buf.getvalue()


def _with_exif(rgb, exif):
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(buf, 'JPEG', exif=exif.tobytes())
    return buf.getvalue()


GOOD = ['good', 'tiny', 'gray16', 'rgba', 'gray', 'cmyk', 'anim', 'photo', 'pages', 'phone',
        'new_line', 'caf_']
BAD = {'zero.jpg': 'empty', 'text.png': 'not a readable image', 'thin.png': 'too thin',
       'truncated.jpg': 'truncated', 'bomb.png': 'over the limit', 'dangling.jpg': 'no such',
       'x.jpg': 'folder'}


def run_demo(args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'demo'] + args, cwd=ROOT, capture_output=True,
                          text=True, errors='surrogateescape', timeout=timeout)


def model_args(checkpoint_v2, flame_assets, flame_model=None):
    return ['--load_path', checkpoint_v2,
            '--flame_model_path', flame_model or flame_assets['flame_model'],
            '--flame_texture_data_path', flame_assets['texture_data']]


def test_corpus_folder(corpus, tmp_path, checkpoint_v2, flame_assets):
    out = tmp_path / 'out'
    proc = run_demo(['--img_path', str(corpus), '--out_folder', str(out)]
                    + model_args(checkpoint_v2, flame_assets) + ALL_OUTPUT_FLAGS)
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == len(BAD), errors
    for name, reason in BAD.items():
        [line] = [e for e in errors if os.path.join(str(corpus), name) in e]
        assert reason in line, line
    assert files_under(out) == outputs_of(*GOOD)
    summary = without_speed(proc.stdout.strip().splitlines()[-1])
    assert summary == '%d of %d input(s) done, outputs in %s' % (len(GOOD), len(GOOD) + len(BAD),
                                                                 out)
    # names written into the textured OBJ/MTL are whole lines
    obj = (out / 'texture' / 'new_line.obj').read_text().splitlines()
    assert obj[0] == 'mtllib new_line.mtl'
    assert (out / 'texture' / 'new_line.mtl').read_text().splitlines()[-1] == 'map_Kd new_line.png'


def test_exif_orientation_is_applied(corpus):
    upright = cv2.imread(IMAGE)[..., ::-1]
    got = load_image(str(corpus / 'phone.jpg'))
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright).mean() < 4  # JPEG loss only


def test_bomb_is_refused_fast(corpus):
    start = time.perf_counter()
    with pytest.raises(ImageError, match='over the limit'):
        load_image(str(corpus / 'bomb.png'))
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ImageError, match='over the limit'):
        load_image(IMAGE, max_pixels=250 * 250 - 1)
    assert load_image(IMAGE, max_pixels=250 * 250).shape == (250, 250, 3)


def test_blocked_output_path_writes_none_of_that_image(tmp_path, checkpoint_v2, flame_assets):
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('img1', 'img2'):
        cv2.imwrite(str(folder / (name + '.png')), cv2.imread(IMAGE))
    out = tmp_path / 'out'
    (out / 'texture' / 'img1.obj').mkdir(parents=True)  # the last output of img1 is blocked
    proc = run_demo(['--img_path', str(folder), '--out_folder', str(out)]
                    + model_args(checkpoint_v2, flame_assets) + ALL_OUTPUT_FLAGS)
    assert proc.returncode == 1
    [error] = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert 'img1' in error and 'folder' in error
    assert files_under(out) == outputs_of('img2')


def test_flame_face_index_out_of_range_is_a_model_error(tmp_path, checkpoint_v2, flame_assets):
    from util.io.safe_pickle import load_pickle
    model = load_pickle(flame_assets['flame_model'])
    faces = np.array(model['f'], dtype=np.int64)
    faces[7, 1] = 5023
    model = {k: np.asarray(v) if not hasattr(v, 'tocsc') else v for k, v in model.items()}
    model['f'] = faces
    bad = tmp_path / 'generic_model.pkl'
    with open(bad, 'wb') as fh:
        pickle.dump(model, fh, protocol=2)
    proc = run_demo(['--img_path', IMAGE, '--out_folder', str(tmp_path / 'out')]
                    + model_args(checkpoint_v2, flame_assets, str(bad)))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and str(bad) in errors[0] and 'outside' in errors[0]
    assert not (tmp_path / 'out' / 'images').exists()


@pytest.mark.parametrize('where', ['a_file', 'read_only', 'proc'])
def test_unwritable_output_folder_fails_before_the_model_loads(tmp_path, checkpoint_v2,
                                                               flame_assets, where):
    if where == 'a_file':
        out = tmp_path / 'out'
        out.write_text('not a folder')
    elif where == 'read_only':
        if os.geteuid() == 0:
            pytest.skip('root can write into read-only folders')
        out = tmp_path / 'ro'
        out.mkdir(mode=0o555)
    else:
        out = '/proc/ringnet-out'
    proc = run_demo(['--img_path', IMAGE, '--out_folder', str(out)]
                    + model_args(checkpoint_v2, flame_assets))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and str(out) in errors[0]
    if where == 'a_file':
        assert errors == ['error: %s: cannot write outputs there: it is a file, not a folder'
                          % out]
    assert 'outputs in' not in proc.stdout


def test_nothing_done_names_no_folder(tmp_path, checkpoint_v2, flame_assets):
    folder = tmp_path / 'in'
    folder.mkdir()
    (folder / 'zero.jpg').write_bytes(b'')
    (folder / 'text.png').write_text('not an image')
    out = tmp_path / 'out'
    proc = run_demo(['--img_path', str(folder), '--out_folder', str(out)]
                    + model_args(checkpoint_v2, flame_assets))
    assert proc.returncode == 1
    assert without_speed(proc.stdout.strip().splitlines()[-1]) == '0 of 2 input(s) done'
    assert files_under(out) == ['manifest.jsonl']  # the record of what failed, nothing else
    with open(out / 'manifest.jsonl') as fh:
        lines = [json.loads(line) for line in fh]
    assert [(r['input'], r['status'], r['outputs']) for r in lines] == [
        (str(folder / 'text.png'), 'failed', []), (str(folder / 'zero.jpg'), 'failed', [])]
