"""The run's report: OUT/report.html (a page to look through the results, offline) and
OUT/run.json (the run's summary, for scripts), built from the manifest's records.

Pure: ``report_files(records, run, out_folder)`` reads the outputs the records name (never
writes) and yields (relative path, bytes) as it goes (a run of any size is never held in
memory); the caller writes them (util.io.atomic.write_files). The page opens from
``file://`` with no network and no library: Chromium refuses XHR / fetch of sibling files from
``file://`` and treats ``file://`` images as cross-origin for WebGL (texImage2D), so everything
the 3-D viewer needs (vertices, triangles, UVs, the texture as a data: URL, morph targets) is
written into small ``.js`` files under OUT/report/ that the page loads with <script> tags when
a view is opened. Rows come 50 to a page: the first page is in report.html itself, the others
in report/pages/NNNN.js, loaded on demand, so the first paint does not depend on the run's
size. Every link is relative: the output folder can be moved or copied as a whole.

Files (docs/formats.md §18): report.html; run.json; report/report.js, report/report.css (the
viewer and the page, util/outputs/report_assets); report/pages/NNNN.js; report/data/...js.
"""
import base64
import hashlib
import html
import json
import os
import urllib.parse

import numpy as np

from util.errors import printable
from util.io.glb_read import GlbError, read_glb
from util.io.mesh_io import MeshError, read_obj
from util.outputs.naming import (CLIP_FILES, OUTPUT_FILES, REPORT_FOLDER, REPORT_HTML,
                                 RUN_JSON, output_path)

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'report_assets')
ASSET_FILES = ('report.js', 'report.css')
PAGE_SIZE = 50
FIRST = {'failed': 0, 'partial': 1}  # these rows come first, the rest in manifest order
# the kinds with a 3-D view, in button order, and their labels
VIEWS = {'texture_obj': 'textured mesh', 'mesh': 'mesh', 'neutral': 'neutral',
         'glb': 'GLB with expressions'}
# the neutral mesh has zero pose: FLAME's own frame (y up, face toward +z), like a GLB; every
# other OBJ holds predicted vertices, in the render camera's frame (y down, z away: §12)
FLAME_FRAME_KINDS = ('neutral',)
SIDECAR_MAX_BYTES = 1 << 20  # a picture's params/NAME.json is ~2 KB; a clip's track is not read
FOLDED_LINKS = 12  # a folder with more files than this is listed folded (frame meshes)


def _esc(value):
    """``value`` as HTML text or attribute: one printable line (file names may hold control
    characters and undecodable bytes: util.errors.printable), then HTML-escaped."""
    text = str(value)
    try:
        text = printable(text)
    except UnicodeError:  # a lone surrogate that is no undecodable byte
        text = text.encode('utf-8', 'backslashreplace').decode('ascii')
    return html.escape(text, quote=True)


def _href(rel):
    """A relative output path as an attribute value: percent-encoded ('#', '?', spaces, and
    a file name's undecodable bytes as the bytes they are)."""
    return html.escape(urllib.parse.quote(rel, safe='/', errors='surrogateescape'), quote=True)


def _script_json(value):
    """JSON safe inside a <script> element and a .js file (no '</script>', no U+2028)."""
    return (json.dumps(value, ensure_ascii=True, separators=(',', ':'))
            .replace('<', '\\u003c').replace('>', '\\u003e').replace('&', '\\u0026'))


def _b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode('ascii')


def ordered(records):
    """Failed rows first, then partial ones, then the others, each in manifest order."""
    return sorted(records, key=lambda r: FIRST.get(r.get('status'), len(FIRST)))


def record_images(record):
    """The images a manifest record stands for in its run: a photo done 1, a video (done or
    cut short) its frames, anything else 0."""
    if record.get('status') not in ('ok', 'partial'):
        return 0
    return int(record.get('frames', 1) or 0)


def run_summary(records, run):
    """run.json: ``run`` (the caller's facts: inputs, seconds, backend, engine, precision,
    interrupted, started, flags, ...) with what the records say added: counts per status
    (not_done: inputs without a record, e.g. after an interruption), images processed in this
    run (a photo 1, a video its frames; skipped inputs 0) and images_per_s over ``seconds``."""
    counts = {'ok': 0, 'failed': 0, 'partial': 0, 'skipped': 0}
    images = 0
    for record in records:
        status = record.get('status')
        counts[status] = counts.get(status, 0) + 1
        images += record_images(record)
    counts['not_done'] = max(int(run.get('inputs', len(records))) - len(records), 0)
    seconds = float(run.get('seconds') or 0.0)
    summary = {'inputs': int(run.get('inputs', len(records))), 'counts': counts,
               'images': images,
               'images_per_s': round(images / seconds, 3) if seconds > 0 else None}
    summary.update((k, v) for k, v in run.items() if k not in summary)
    return summary


KEEP = None  # in report_files' stream: the file is already there as it should be; keep it
DATA_VERSION = b'1'  # part of every view's file name: a new layout never reuses old files


class _Data:
    """The viewer's data files, handed out as they are made (``drain``): one per view,
    named after the files it was made from (path, size, modification time), so a later
    report (--skip_existing) keeps it instead of reading the mesh again; blocks that many
    views share (a topology, a model's expression basis) once, named by their content."""

    def __init__(self, out_folder):
        self.out_folder = out_folder
        self.pending = []  # (relative path, bytes or KEEP) not yet handed out
        self.done = set()
        self.memo = {}  # digest of the arrays -> path (one topology for every FLAME mesh)

    def drain(self):
        pending, self.pending = self.pending, []
        return pending

    def _put(self, path, key, value):
        self.pending.append((path, ('RingNetReport.data(%s,%s);\n' % (
            _script_json(key), _script_json(value))).encode()))
        self.done.add(path)

    def shared(self, value, digest=None):
        """``value`` (a dict of strings and numbers) once per content -> its path. Known
        arrays are named by ``digest`` (computed on them) without encoding them first."""
        if digest is not None and digest in self.memo:
            return self.memo[digest]
        text = json.dumps(value, sort_keys=True).encode()
        key = 's' + hashlib.sha1(text).hexdigest()[:20]
        path = '%s/data/shared/%s.js' % (REPORT_FOLDER, key)
        if path not in self.done:
            self._put(path, key, value)
        if digest is not None:
            self.memo[digest] = path
        return path

    def view(self, sources, make):
        """The data file of a view made from the files ``sources`` (relative paths) ->
        its path: an identical one the previous report left is kept (with the shared files
        it names), else ``make()`` (-> the view's record, shared files added) is written."""
        ident = [DATA_VERSION]
        for rel in sources:
            st = os.stat(os.path.join(self.out_folder, *rel.split('/')))
            ident.append(('%s\0%d\0%d' % (rel, st.st_size, st.st_mtime_ns)).encode('utf-8',
                                                                                 'replace'))
        key = 'v' + hashlib.sha1(b'\0'.join(ident)).hexdigest()[:20]
        path = '%s/data/%s/%s.js' % (REPORT_FOLDER, key[1:3], key)
        if path in self.done:
            return path
        old = self._previous(path)
        if old is not None:
            self.pending.extend((p, KEEP) for p in [path] + old if p not in self.done)
            self.done.update([path] + old)
        else:
            self._put(path, key, make())
        return path

    def _previous(self, path):
        """The shared files a data file of the previous report names, if it and they are
        all there, else None."""
        full = os.path.join(self.out_folder, *path.split('/'))
        try:
            with open(full, encoding='ascii') as fh:
                text = fh.read()
            record = json.loads(text[text.index(',') + 1:text.rindex(')')])
        except (OSError, ValueError):
            return None
        shared = [record[k] for k in ('topology', 'morph') if isinstance(record.get(k), str)]
        ok = all(p.startswith(REPORT_FOLDER + '/data/shared/') and
                 os.path.isfile(os.path.join(self.out_folder, *p.split('/'))) for p in shared)
        return shared if ok else None

    def topology(self, faces, vt=None, ft=None):
        """The triangles (and UVs) of a mesh, written once per distinct topology -> path.

        UVs: ``vt`` (T,2) with ``ft`` (F,3) as an OBJ has them (v up), or per vertex with
        ``ft`` None. With ``ft``, as WebGL needs one UV per vertex, every distinct (vertex,
        UV) corner becomes a vertex, ``map`` naming the mesh vertex it copies (positions stay
        per mesh vertex)."""
        faces = np.ascontiguousarray(faces, dtype=np.int64)
        parts = [faces] if vt is None else [faces, np.ascontiguousarray(vt, np.float64)] + (
            [] if ft is None else [np.ascontiguousarray(ft, np.int64)])
        digest = hashlib.sha1(b''.join(p.tobytes() + repr(p.shape).encode()
                                       for p in parts)).hexdigest()
        if digest in self.memo:
            return self.memo[digest]
        record = {}
        if vt is not None and ft is None:
            record['uvs'] = _b64(parts[1], '<f4')
        elif vt is not None:
            n_uv = len(parts[1])
            corners = faces.ravel() * n_uv + parts[2].ravel()  # (vertex, UV) as one int
            unique, inverse = np.unique(corners, return_inverse=True)
            record['map'] = _b64(unique // n_uv, '<u4')
            record['uvs'] = _b64(parts[1][unique % n_uv], '<f4')
            faces = inverse.reshape(-1, 3)
        wide = faces.size and faces.max() >= 65536
        record['indices'] = _b64(faces, '<u4' if wide else '<u2')
        record['index_bits'] = 32 if wide else 16
        return self.shared(record, digest)

    def morph(self, targets):
        """(T,N,3) morph targets, written once per distinct basis -> path."""
        targets = np.ascontiguousarray(targets, dtype='<f4')
        digest = 'm' + hashlib.sha1(targets.tobytes() + repr(targets.shape).encode()).hexdigest()
        if digest in self.memo:
            return self.memo[digest]
        return self.shared({'targets': _b64(targets, '<f4'), 'count': int(len(targets))},
                           digest)


def _texture_url(png_path):
    with open(png_path, 'rb') as fh:
        return 'data:image/png;base64,' + base64.b64encode(fh.read()).decode('ascii')


def _obj_record(data, out_folder, rel, kind, png):
    """The viewer's record of OBJ output ``rel`` of ``kind`` (textured with ``png``)."""
    mesh = read_obj(os.path.join(out_folder, *rel.split('/')))
    record = {'positions': _b64(mesh.v, '<f4'),
              'frame': 'flame' if kind in FLAME_FRAME_KINDS else 'camera'}
    if png is not None and mesh.vt is not None:
        record['topology'] = data.topology(mesh.f, mesh.vt, mesh.ft)
        record['texture'] = _texture_url(os.path.join(out_folder, *png.split('/')))
    else:
        record['topology'] = data.topology(mesh.f)
    return record


def _glb_record(data, out_folder, rel):
    """The viewer's record of a GLB output ``rel`` (base mesh and its expression morphs)."""
    mesh = read_glb(os.path.join(out_folder, *rel.split('/')))
    record = {'positions': _b64(mesh.positions, '<f4'), 'frame': 'flame',
              'names': mesh.target_names,
              'weights': [round(float(w), 6) for w in mesh.weights]}
    if mesh.uvs is not None:  # glTF's v runs down the image, the viewer's (OBJ's) up
        record['topology'] = data.topology(mesh.indices, mesh.uvs * [1, -1] + [0, 1])
        record['texture'] = 'data:%s;base64,%s' % (mesh.image[0], base64.b64encode(
            mesh.image[1]).decode('ascii'))
    else:
        record['topology'] = data.topology(mesh.indices)
    if len(mesh.targets):
        record['morph'] = data.morph(mesh.targets)
    return record


def _head_pose(out_folder, rel):
    """(yaw, pitch, roll) degrees from a picture's sidecar params/NAME.json, else None."""
    path = os.path.join(out_folder, *rel.split('/'))
    try:
        if os.path.getsize(path) > SIDECAR_MAX_BYTES:
            return None
        with open(path, encoding='utf-8') as fh:
            pose = json.load(fh).get('head_pose_deg')
        return tuple(float(pose[k]) for k in ('yaw', 'pitch', 'roll'))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _kind(rel, clip):
    """(kind, NAME) of output path ``rel`` by the naming tables (util.outputs.naming), of a
    clip's outputs if ``clip``; None for what no table names (a clip's frame meshes: links
    only). The picture's panel and a face's panel share a form: the first is the picture's."""
    for kind, (folder, suffix) in (CLIP_FILES if clip else OUTPUT_FILES).items():
        if rel.startswith(folder + '/') and rel.endswith(suffix):
            return kind, rel[len(folder) + 1:len(rel) - len(suffix)]
    return None


def _groups(outputs, clip):
    """(the picture's panel or None, {NAME: {'views': [(kind, rel)], 'panel': rel,
    'sidecar': rel}}): the outputs grouped by NAME (a face, a track, or the picture itself
    without detection): its meshes to view, its own panel (a face of a picture with several:
    images/NAME_face<k>.png), its JSON sidecar (params/NAME.json)."""
    panel, groups = None, {}
    for rel in outputs:
        found = _kind(rel, clip)
        if found is None:
            continue
        kind, name = found
        if kind in ('panel', 'face_panel') and panel is None:
            panel = rel
        elif kind in ('panel', 'face_panel'):
            groups.setdefault(name, {})['panel'] = rel
        elif kind in VIEWS:
            groups.setdefault(name, {}).setdefault('views', []).append((kind, rel))
        elif kind == 'params_json':
            groups.setdefault(name, {})['sidecar'] = rel
    order = list(VIEWS)
    for group in groups.values():
        group.setdefault('views', []).sort(key=lambda view: order.index(view[0]))
    return panel, groups


def _face_html(name, group, data, out_folder, problems):
    """One face (or track) of a row: its name, head pose, panel and 3-D view buttons."""
    parts = ['<section class="face"><h3>%s</h3>' % _esc(name)]
    pose = _head_pose(out_folder, group['sidecar']) if 'sidecar' in group else None
    if pose is not None:
        parts.append('<span class="pose" title="head pose, degrees (docs/formats.md §12)">'
                     'yaw %.1f° · pitch %.1f° · roll %.1f°</span>' % pose)
    if 'panel' in group:
        parts.append('<a class="facepanel" href="%s"><img loading="lazy" alt="" src="%s"></a>'
                     % (_href(group['panel']), _href(group['panel'])))
    buttons = []
    for kind, rel in group['views']:
        png = output_path(name, 'texture').replace(os.sep, '/') \
            if kind == 'texture_obj' else None  # the image its MTL names (§5)
        if png is not None and not os.path.isfile(os.path.join(out_folder, *png.split('/'))):
            png = None
        try:
            if kind == 'glb':
                path = data.view([rel], lambda: _glb_record(data, out_folder, rel))
            else:
                path = data.view([rel] + ([png] if png else []),
                                 lambda: _obj_record(data, out_folder, rel, kind, png))
        except (MeshError, GlbError, OSError, ValueError) as e:
            problems.append('%s: %s' % (rel, str(e).splitlines()[0] if str(e) else e))
            continue
        buttons.append('<button type="button" class="view" data-src="%s" data-file="%s">'
                       '3-D %s</button>' % (_href(path), _esc(rel),
                                            _esc(VIEWS[kind])))
    if buttons:
        parts.append('<div class="views">%s</div><div class="slot"></div>' % ''.join(buttons))
    parts.append('</section>')
    return ''.join(parts)


def _links_html(outputs, out_folder):
    """Every output as a link, grouped by folder; long folders folded; missing ones marked."""
    folders = {}
    for rel in outputs:
        folder = rel.split('/', 1)[0] if '/' in rel else '.'
        folders.setdefault(folder, []).append(rel)
    parts = []
    for folder, rels in folders.items():
        links = ' '.join(
            '<a href="%s">%s</a>%s' % (
                _href(rel), _esc(rel.split('/', 1)[-1]),
                '' if os.path.isfile(os.path.join(out_folder, *rel.split('/')))
                else ' <span class="missing">(missing)</span>')
            for rel in rels)
        if len(rels) > FOLDED_LINKS:
            parts.append('<details class="folder"><summary>%s/ (%d files)</summary>%s</details>'
                         % (_esc(folder), len(rels), links))
        else:
            parts.append('<div class="folder"><span class="dir">%s/</span> %s</div>'
                         % (_esc(folder), links))
    return '<div class="files">%s</div>' % ''.join(parts)


def row_html(row, record, data, out_folder):
    """The <article> of manifest record ``record``, the ``row``-th of the report."""
    status = str(record.get('status') or 'unknown')
    outputs = [str(p) for p in record.get('outputs') or []]
    clip = 'frames' in record
    panel, groups = _groups(outputs, clip)
    video = next((p for p in outputs if clip and (_kind(p, clip) or ('',))[0] == 'video'),
                 None)
    if video:
        thumb = ('<video controls muted loop playsinline preload="metadata" src="%s"></video>'
                 % _href(video))
    elif panel:
        thumb = ('<a href="%s"><img loading="lazy" alt="panel" src="%s"></a>'
                 % (_href(panel), _href(panel)))
    else:
        thumb = '<div class="none">no image</div>'
    parts = ['<article class="row %s" id="row%d">' % (_esc(status), row),
             '<div class="thumb">%s</div><div class="info">' % thumb,
             '<h2><span class="badge %s">%s</span> <span class="input">%s</span></h2>'
             % (_esc(status), _esc(status), _esc(record.get('input', '')))]
    if record.get('error'):
        parts.append('<p class="error">%s</p>' % _esc(record['error']))
    facts = [('faces', record.get('faces')), ('frames', record.get('frames')),
             ('seconds', '%.2f' % float(record.get('seconds') or 0.0))]
    parts.append('<dl class="facts">%s</dl>' % ''.join(
        '<dt>%s</dt><dd>%s</dd>' % (k, _esc(v)) for k, v in facts if v is not None))
    problems = []
    faces = [_face_html(name, groups[name], data, out_folder, problems)
             for name in sorted(groups)]
    if faces:
        parts.append('<div class="faces">%s</div>' % ''.join(faces))
    if problems:
        parts.append('<p class="problem">not shown: %s</p>' % _esc('; '.join(problems)))
    if outputs:
        parts.append(_links_html(outputs, out_folder))
    parts.append('</div></article>')
    return ''.join(parts)


def _summary_html(summary):
    counts = summary['counts']
    shown = [('input' if summary['inputs'] == 1 else 'inputs', summary['inputs'])] + [
        (k, v) for k, v in counts.items() if v]
    facts = [(k, summary.get(k)) for k in ('backend', 'precision', 'engine', 'images',
                                            'images_per_s', 'seconds', 'started')]
    flags = summary.get('flags') or {}
    return ''.join([
        '<header><h1>RingNet run%s</h1>' % (' <span class="badge failed">interrupted</span>'
                                            if summary.get('interrupted') else ''),
        '<p class="counts">%s</p>' % ' · '.join(
            '<b>%s</b> %s' % (_esc(v), _esc(k.replace('_', ' '))) for k, v in shown),
        '<dl class="facts">%s</dl>' % ''.join(
            '<dt>%s</dt><dd>%s</dd>' % (_esc(k.replace('_', ' ')), _esc(v))
            for k, v in facts if v is not None),
        '<details><summary>flags</summary><table class="flags">%s</table></details>' % ''.join(
            '<tr><td>--%s</td><td>%s</td></tr>' % (_esc(k), _esc(v))
            for k, v in sorted(flags.items())) if flags else '',
        '<p class="links"><a href="run.json">run.json</a> · '
        '<a href="manifest.jsonl">manifest.jsonl</a></p></header>'])


def _page_html(title, summary, first_page, pages, total):
    return ''.join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>%s</title><link rel="icon" href="data:,">' % _esc(title),
        '<link rel="stylesheet" href="%s/report.css"></head><body>' % REPORT_FOLDER,
        _summary_html(summary),
        '<nav class="pager" data-pages="%d"></nav>' % pages,
        '<main id="rows">%s</main>' % (first_page or '<p class="none">No input finished.</p>'),
        '<nav class="pager" data-pages="%d"></nav>' % pages,
        '<script src="%s/report.js"></script>' % REPORT_FOLDER,
        '<script>RingNetReport.start(%s);</script>' % _script_json(
            {'pages': pages, 'rows': total, 'pageSize': PAGE_SIZE,
             'pageSrc': REPORT_FOLDER + '/pages/'}),
        '</body></html>\n'])


def report_files(records, run, out_folder, title='RingNet report'):
    """Manifest ``records`` (dicts, in manifest order) and the caller's ``run`` facts (see
    run_summary) -> a stream of (relative path, bytes or KEEP) for run.json, everything under
    report/ and, last, report.html; KEEP: the previous report's file is already what it
    should be. A stream, so a run of any size is never held in memory: the caller writes
    each file as it comes (``dict()`` of it is the whole report). Reads the outputs under
    ``out_folder`` the records name; one that cannot be read is named on its row ("not
    shown: ...") and the report goes on."""
    summary = run_summary(records, run)
    yield RUN_JSON, (json.dumps(summary, indent=1, ensure_ascii=True) + '\n').encode()
    for name in ASSET_FILES:
        with open(os.path.join(ASSETS, name), 'rb') as fh:
            yield '%s/%s' % (REPORT_FOLDER, name), fh.read()
    data = _Data(out_folder)
    rows = ordered(records)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    first = ''
    for page in range(pages):
        chunk = []
        for k in range(page * PAGE_SIZE, min(len(rows), (page + 1) * PAGE_SIZE)):
            chunk.append(row_html(k, rows[k], data, out_folder))
            yield from data.drain()
        if page == 0:
            first = ''.join(chunk)
        else:
            yield '%s/pages/%04d.js' % (REPORT_FOLDER, page), (
                'RingNetReport.page(%d,%s);\n' % (page, _script_json(''.join(chunk)))).encode()
    yield REPORT_HTML, _page_html(title, summary, first, pages, len(rows)).encode('utf-8')
