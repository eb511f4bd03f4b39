"""OUT/report.html and OUT/run.json (util.outputs.report) without a browser: the page read
back with Python's html.parser, the viewer's data decoded and compared with the meshes read
by trimesh and a small OBJ parser of this file; the command's wiring (--noreport, exit 2,
--skip_existing). The browser side is tests/test_report_browser.py, the GLB reader
tests/test_glb_read.py."""
import base64
import datetime
import html.parser
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
import trimesh

from conftest import REPORT_CLIP_FRAMES, REPORT_FLAGS, ROOT
from gltf_reader import parse_glb as gltf_parse, read_accessor as gltf_accessor
from output_sets import files_under
from util.io.atomic import write_files
from util.outputs.report import KEEP, PAGE_SIZE, report_files, run_summary


class Rows(html.parser.HTMLParser):
    """The report's rows as dicts: status, input, error, links, img / video src, buttons."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.capture = [], None, None
        self.divs = []  # open <div>s: is each the file list?

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get('class') or '').split()
        if tag == 'div':
            self.divs.append('files' in classes or bool(self.divs and self.divs[-1]))
        if tag == 'article' and 'row' in classes:
            self.row = {'status': classes[1], 'input': '', 'error': '', 'links': [],
                        'img': [], 'video': [], 'buttons': [], 'text': ''}
            self.rows.append(self.row)
        elif self.row is None:
            return
        elif tag == 'span' and 'input' in classes:
            self.capture = 'input'
        elif tag == 'p' and 'error' in classes:
            self.capture = 'error'
        elif tag == 'a' and 'href' in attrs and self.divs and self.divs[-1]:
            self.row['links'].append(urllib.parse.unquote(attrs['href']))
        elif tag == 'img':
            self.row['img'].append(urllib.parse.unquote(attrs['src']))
        elif tag == 'video':
            self.row['video'].append(urllib.parse.unquote(attrs['src']))
        elif tag == 'button' and 'view' in classes:
            self.row['buttons'].append((urllib.parse.unquote(attrs['data-src']),
                                        attrs['data-file']))

    def handle_endtag(self, tag):
        self.capture = None
        if tag == 'div' and self.divs:
            self.divs.pop()

    def handle_data(self, data):
        if self.row is not None:
            self.row['text'] += data
            if self.capture:
                self.row[self.capture] += data


def rows_of(text):
    parser = Rows()
    parser.feed(text)
    return parser.rows


def page_html(js_text):
    """The HTML a report/pages/NNNN.js file hands to RingNetReport.page(k, html)."""
    start = js_text.index(',') + 1
    return json.loads(js_text[start:js_text.rindex(')')])


def data_record(out, rel):
    """The record a report/data/...js file hands to RingNetReport.data(key, record)."""
    text = (out / rel).read_text()
    return json.loads(text[text.index(',') + 1:text.rindex(')')])


def decode(b64, dtype, width):
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).reshape(-1, width)


def obj_arrays(path):
    """(v, vt, f, ft) of an OBJ, parsed here (f / ft 0-based; vt, ft None without UVs)."""
    v, vt, f, ft = [], [], [], []
    for line in open(path):
        parts = line.split()
        if parts[:1] == ['v']:
            v.append([float(x) for x in parts[1:4]])
        elif parts[:1] == ['vt']:
            vt.append([float(x) for x in parts[1:3]])
        elif parts[:1] == ['f']:
            corners = [c.split('/') for c in parts[1:]]
            f.append([int(c[0]) - 1 for c in corners])
            if len(corners[0]) > 1:
                ft.append([int(c[1]) - 1 for c in corners])
    return (np.array(v), np.array(vt) if vt else None, np.array(f),
            np.array(ft) if ft else None)


def manifest(out):
    with open(out / 'manifest.jsonl') as fh:
        return [json.loads(line) for line in fh]


# --- run.json and the page ----------------------------------------------------------------


def test_run_json_sums_up_the_run(report_run):
    out, proc, folder = report_run
    run = json.loads((out / 'run.json').read_text())
    assert run['inputs'] == 4
    assert run['counts'] == {'ok': 3, 'failed': 1, 'partial': 0, 'skipped': 0, 'not_done': 0}
    assert run['images'] == 2 + REPORT_CLIP_FRAMES  # two pictures and the clip's frames
    assert run['seconds'] > 0 and run['images_per_s'] == pytest.approx(
        run['images'] / run['seconds'], rel=1e-3)
    assert run['backend'] == 'onnx' and run['engine'] == 'local'  # auto converts on first use
    assert run['interrupted'] is False and run['precision'] == 'fp32'
    started = datetime.datetime.fromisoformat(run['started'])
    assert abs((datetime.datetime.now().astimezone() - started).total_seconds()) < 3600
    flags = run['flags']
    assert flags['img_path'] == str(folder) and flags['demo'] is True
    assert all(flags[f.split('=')[0][2:]] is True for f in REPORT_FLAGS)
    assert flags['noreport'] is False and flags['smooth'] is False


def test_report_rows_failures_first_with_every_file(report_run):
    out, proc, folder = report_run
    text = (out / 'report.html').read_text(encoding='utf-8')
    rows = rows_of(text)
    records = manifest(out)
    assert [r['status'] for r in rows] == ['failed', 'ok', 'ok', 'ok']
    failed = next(r for r in records if r['status'] == 'failed')
    assert rows[0]['input'] == failed['input'] == str(folder / 'broken.jpg')
    assert rows[0]['error'] == failed['error'] and 'broken.jpg' in rows[0]['error']
    assert rows[0]['links'] == [] and rows[0]['img'] == []
    by_input = {r['input']: r for r in rows}
    for record in records:
        row = by_input[record['input']]
        # every output is linked, relatively, and the link resolves inside OUT
        assert sorted(row['links']) == sorted(record['outputs'])
        assert all((out / rel).is_file() for rel in row['links'])
    photo = by_input[str(folder / '000001.jpg')]
    assert photo['img'] == ['images/000001.png'] and photo['video'] == []
    assert 'yaw 0.0°' in photo['text']  # the sidecar's head pose (the demo's mean pose)
    assert [f for _, f in photo['buttons']] == [
        'texture/000001_face0.obj', 'mesh/000001_face0.obj', 'neutral_mesh/000001_face0.obj',
        'glb/000001_face0.glb']
    group = by_input[str(folder / 'group.png')]  # the picture, then each face's own panel
    assert group['img'] == ['images/group.png', 'images/group_face0.png',
                            'images/group_face1.png']
    assert [f for _, f in group['buttons']] == [
        '%s/group_face%d.%s' % (kind, k, ext) for k in (0, 1) for kind, ext in (
            ('texture', 'obj'), ('mesh', 'obj'), ('neutral_mesh', 'obj'), ('glb', 'glb'))]
    assert group['text'].count('yaw ') == 2
    clip = by_input[str(folder / 'clip.avi')]
    assert clip['video'] == ['video/clip.mp4'] and clip['img'] == []
    assert [f for _, f in clip['buttons']] == ['neutral_mesh/clip.obj', 'glb/clip.glb']
    # every link and source relative and there (the folder can be moved), none on a network
    addresses = Addresses()
    addresses.feed(text)
    assert {'report/report.js', 'report/report.css', 'run.json', 'manifest.jsonl'} <= set(
        addresses.found)
    for address in addresses.found:
        assert not address.startswith('/') and ':' not in address.split('/')[0] \
            or address.startswith('data:'), address
        assert address.startswith('data:') or (out / address).is_file(), address
    for name in ('report.js', 'report.css'):
        assert 'http' not in (out / 'report' / name).read_text()


class Addresses(html.parser.HTMLParser):
    """Every href / src / data-src attribute of a page (decoded)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [urllib.parse.unquote(v) for k, v in attrs
                       if k in ('href', 'src', 'data-src') and v]


def test_viewer_data_holds_the_meshes(report_run):
    """Each 3-D view's data decodes to its file: an OBJ's positions and triangles as trimesh
    and this file's parser read them, for the textured one each corner's (position, UV) pair
    and the texture's bytes; a GLB's as tests/gltf_reader.py (the GLB tests' reader) reads
    it: base positions (the neutral OBJ's, seam copies after them), triangles, UVs (flipped
    to the OBJ's v up), morph targets, names, default weights (the predicted expression)."""
    out, _, _ = report_run
    rows = rows_of((out / 'report.html').read_text(encoding='utf-8'))
    views = dict((f, src) for row in rows for src, f in row['buttons'])
    assert len(views) == 4 + 8 + 2
    for rel, src in views.items():
        record = data_record(out, src)
        topology = data_record(out, record['topology'])
        positions = decode(record['positions'], '<f4', 3)
        indices = decode(topology['indices'], '<u%d' % (topology['index_bits'] // 8), 3)
        if rel.endswith('.glb'):
            check_glb_view(out, rel, record, topology, positions, indices)
            continue
        mesh = trimesh.load(str(out / rel), process=False, maintain_order=True)
        v, vt, f, ft = obj_arrays(out / rel)
        assert np.array_equal(positions, v.astype(np.float32))
        assert record['frame'] == ('flame' if rel.startswith('neutral_mesh/') else 'camera')
        if 'map' not in topology:
            assert np.array_equal(indices, f) and np.array_equal(indices, mesh.faces)
            np.testing.assert_allclose(positions, mesh.vertices, rtol=0, atol=1e-7)
            continue
        assert rel.startswith('texture/')
        vertex_of = np.frombuffer(base64.b64decode(topology['map']), '<u4')
        uvs = decode(topology['uvs'], '<f4', 2)
        assert np.array_equal(positions[vertex_of[indices]], v.astype(np.float32)[f])
        assert np.array_equal(uvs[indices], vt.astype(np.float32)[ft])
        assert record['texture'] == 'data:image/png;base64,' + base64.b64encode(
            (out / rel).with_suffix('.png').read_bytes()).decode()
    # shared by content: FLAME's triangles, the textured split, the GLBs' triangles with
    # their UVs and without (a track's), one expression basis for every GLB
    shared = {data_record(out, src)[key] for src in views.values()
              for key in ('topology', 'morph') if key in data_record(out, src)}
    assert len(shared) == 5


def check_glb_view(out, rel, record, topology, positions, indices):
    doc, binary = gltf_parse((out / rel).read_bytes())
    primitive = doc['meshes'][0]['primitives'][0]
    assert record['frame'] == 'flame'
    assert np.array_equal(positions, gltf_accessor(doc, binary,
                                                   primitive['attributes']['POSITION']))
    neutral = obj_arrays(out / 'neutral_mesh' / (rel[4:-4] + '.obj'))[0]
    np.testing.assert_allclose(positions[:len(neutral)], neutral, rtol=0, atol=1e-6)
    assert np.array_equal(indices.ravel(), gltf_accessor(doc, binary, primitive['indices']))
    if 'TEXCOORD_0' in primitive['attributes']:  # a photo's face: the texture embedded
        uv = gltf_accessor(doc, binary, primitive['attributes']['TEXCOORD_0'])
        np.testing.assert_allclose(decode(topology['uvs'], '<f4', 2), uv * [1, -1] + [0, 1],
                                   rtol=0, atol=1e-7)
        view = doc['bufferViews'][doc['images'][0]['bufferView']]
        start = view.get('byteOffset', 0)
        assert record['texture'] == 'data:image/png;base64,' + base64.b64encode(
            binary[start:start + view['byteLength']]).decode()
    else:  # a track's GLB has no texture
        assert rel == 'glb/clip.glb' and 'uvs' not in topology and 'texture' not in record
    morph = data_record(out, record['morph'])
    targets = decode(morph['targets'], '<f4', 3).reshape(morph['count'], -1, 3)
    assert morph['count'] == 50 and record['names'] == ['exp%02d' % k for k in range(50)]
    for k, target in enumerate(primitive['targets']):
        assert np.array_equal(targets[k], gltf_accessor(doc, binary, target['POSITION']))
    if rel != 'glb/clip.glb':  # a photo's face: its predicted expression (the sidecar's)
        sidecar = json.loads((out / 'params' / (rel[4:-4] + '.json')).read_text())
        np.testing.assert_allclose(record['weights'], sidecar['expression'], atol=1e-6)


def fake_records(n):
    """n manifest records without outputs; every 7th failed, every 5th skipped."""
    return [{'input': 'in/%05d.jpg' % k, 'status': 'failed' if k % 7 == 3 else
             ('skipped' if k % 5 == 0 else 'ok'), 'error': 'in/%05d.jpg: bad' % k
             if k % 7 == 3 else None, 'faces': None, 'outputs': [], 'seconds': 0.1}
            for k in range(n)]


def test_pages_hold_every_row_once_failures_first(tmp_path):
    records = fake_records(2 * PAGE_SIZE + 17)
    # a file name with a newline and an undecodable byte (surrogate escape), as os.listdir
    # gives it, is shown escaped on one line (util.errors.printable)
    records[1]['input'] = 'in/caf\udce9\n<b>.jpg'
    shown = 'in/caf\\xe9\\n<b>.jpg'

    files = dict(report_files(records, {'inputs': len(records) + 4, 'seconds': 2.0},
                              str(tmp_path)))
    pages = sorted(p for p in files if p.startswith('report/pages/'))
    assert pages == ['report/pages/0001.js', 'report/pages/0002.js']
    html_rows = rows_of(files['report.html'].decode())
    assert len(html_rows) == PAGE_SIZE
    for p in pages:
        html_rows += rows_of(page_html(files[p].decode()))
    want = ([r['input'] for r in records if r['status'] == 'failed']
            + [r['input'] for r in records if r['status'] != 'failed'])
    assert [r['input'] for r in html_rows] == [shown if w == records[1]['input'] else w
                                               for w in want]
    assert all(r['error'] == 'in/%s: bad' % r['input'][3:] for r in html_rows
               if r['status'] == 'failed')
    summary = json.loads(files['run.json'])
    assert summary['counts'] == {'ok': sum(r['status'] == 'ok' for r in records),
                                 'failed': 17, 'partial': 0,
                                 'skipped': sum(r['status'] == 'skipped' for r in records),
                                 'not_done': 4}
    assert list(files)[-1] == 'report.html'  # written last: it names the others


def test_run_summary_counts_images_not_skipped_ones():
    records = [{'status': 'ok'}, {'status': 'ok', 'frames': 30}, {'status': 'partial',
                                                                   'frames': 7},
               {'status': 'skipped'}, {'status': 'skipped', 'frames': 100},
               {'status': 'failed'}]
    got = run_summary(records, {'inputs': 8, 'seconds': 4.0, 'engine': 'ray'})
    assert got['images'] == 1 + 30 + 7 and got['images_per_s'] == pytest.approx(38 / 4.0)
    assert got['counts'] == {'ok': 2, 'failed': 1, 'partial': 1, 'skipped': 2, 'not_done': 2}
    assert got['engine'] == 'ray' and got['inputs'] == 8
    assert run_summary([], {'inputs': 0, 'seconds': 0})['images_per_s'] is None


def test_unreadable_mesh_is_named_on_its_row_and_the_rest_is_shown(report_run, tmp_path):
    out, _, _ = report_run
    copy = tmp_path / 'out'
    shutil.copytree(out, copy)
    (copy / 'mesh' / '000001_face0.obj').write_text('v 0 0 0\nf 1 2 3\n')
    records = manifest(copy)
    files = dict(report_files(records, {'inputs': 3, 'seconds': 1.0}, str(copy)))
    row = next(r for r in rows_of(files['report.html'].decode()) if r['input'].endswith('01.jpg'))
    assert 'not shown: mesh/000001_face0.obj: ' in row['text'] and 'out of range' in row['text']
    assert [f for _, f in row['buttons']] == ['texture/000001_face0.obj',
                                              'neutral_mesh/000001_face0.obj',
                                              'glb/000001_face0.glb']


def test_a_second_report_keeps_unchanged_data_and_prunes_the_rest(report_run, tmp_path):
    out, _, _ = report_run
    copy = tmp_path / 'out'
    shutil.copytree(out, copy)
    records = manifest(copy)
    stale = copy / 'report' / 'pages' / '0009.js'
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text('old')
    before = {p: os.stat(copy / p).st_mtime_ns for p in files_under_report(copy)}
    items = list(report_files(records, {'inputs': 3, 'seconds': 1.0}, str(copy)))
    kept = [p for p, data in items if data is KEEP]
    assert sorted(kept) == sorted(p for p in before if p.startswith('report/data/'))
    (copy / 'neutral_mesh' / 'clip.obj').touch()  # a changed source: its view is made again
    written = write_files(str(copy), report_files(records, {'inputs': 3, 'seconds': 1.0},
                                                  str(copy)), prune=['report'])
    assert written == 5  # run.json, report.js, report.css, report.html and the clip's view
    assert not stale.exists() and not (copy / 'report' / 'pages').exists()
    after = files_under_report(copy)
    assert len(after) == len(before) - 1  # the clip's new view replaced its old one
    assert all(os.stat(copy / p).st_mtime_ns == before[p] for p in after
               if p.startswith('report/data/') and p in before)


def files_under_report(out):
    return sorted(os.path.relpath(os.path.join(d, n), out).replace(os.sep, '/')
                  for d, _, names in os.walk(out / 'report') for n in names)


# --- the command: when the report is written ------------------------------------------------


def run_demo(args, cache):
    env = dict(os.environ, RINGNET_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, '-m', 'demo', '--demo'] + [str(a) for a in args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_skip_existing_rerun_reports_every_input(report_run, tmp_path):
    """The rerun processes only the broken file again: the report still has all four rows,
    the others as skipped, their views kept from the first report."""
    out, _, folder = report_run
    copy = tmp_path / 'out'
    shutil.copytree(out, copy)
    proc = run_demo(['--img_path', folder, '--out_folder', copy, '--skip_existing']
                    + REPORT_FLAGS, tmp_path / 'cache')
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = rows_of((copy / 'report.html').read_text(encoding='utf-8'))
    assert [r['status'] for r in rows] == ['failed', 'skipped', 'skipped', 'skipped']
    run = json.loads((copy / 'run.json').read_text())
    assert run['counts'] == {'ok': 0, 'failed': 1, 'partial': 0, 'skipped': 3, 'not_done': 0}
    assert run['images'] == 0 and run['flags']['skip_existing'] is True
    assert files_under_report(copy) == files_under_report(out)  # same views, same names


def test_noreport_and_exit_2_write_no_report(tmp_path):
    image = os.path.join(ROOT, 'input_images', '000001.jpg')
    proc = run_demo(['--img_path', image, '--out_folder', tmp_path / 'a', '--noreport'],
                    tmp_path / 'cache')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert files_under(tmp_path / 'a') == ['images/000001.png', 'manifest.jsonl']
    assert sorted(os.listdir(tmp_path / 'a')) == ['images', 'manifest.jsonl']
    proc = run_demo(['--img_path', tmp_path / 'missing.jpg', '--out_folder', tmp_path / 'b'],
                    tmp_path / 'cache')
    assert proc.returncode == 2 and not (tmp_path / 'b').exists()
