"""The report in a real browser: Debian's headless Chromium (WebGL on SwiftShader, no GPU)
driven by Playwright, opening OUT/report.html from file:// after the output folder was moved.

Checked: no console error and no request but file:// (and data: URLs); the failure row names
the bad file; the viewer's canvas draws the mesh where this file projects it (its own camera
math and rasterizer, from the OBJ read by trimesh): pixels inside the silhouette differ from
the background, pixels outside are the background; orbit, zoom and reset; the texture; a GLB's
expression sliders move the mesh where the test's own morph says; the overlay video plays
(its time advances); pages of a large report.

Needs the `chromium` package (.ci/run installs it) and the playwright wheel; the browser is
never downloaded."""
import io
import math
import os
import shutil

import numpy as np
import pytest
import trimesh

from conftest import REPORT_CLIP_FRAMES
from glb_writer import glb_bytes
from gltf_reader import parse_glb as gltf_parse, read_accessor as gltf_accessor
from util.io.atomic import write_files
from util.outputs.report import PAGE_SIZE, report_files

sync_api = pytest.importorskip('playwright.sync_api')
Image = pytest.importorskip('PIL.Image')
ImageDraw = pytest.importorskip('PIL.ImageDraw')
ndimage = pytest.importorskip('scipy.ndimage')

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader', '--mute-audio']
BACKGROUND = np.round(np.array([0.93, 0.94, 0.95]) * 255)  # report.js's clear colour
FOV_DEG, MARGIN = 30.0, 1.15  # report.js's camera (documented at its top)
SIZE = 480  # the canvas, CSS pixels (device pixel ratio 1)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason='needs Debian chromium (apt-get install chromium)')


@pytest.fixture(scope='module')
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Page:
    """A fresh page with what it logged: console errors, page errors, requests."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={'width': 1280, 'height': 900})
        self.errors, self.requests = [], []
        self.page.on('console', lambda m: m.type == 'error' and self.errors.append(m.text))
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.page.on('request', lambda r: self.requests.append(r.url))

    def open(self, folder):
        self.page.goto((folder / 'report.html').as_uri())
        self.page.wait_for_load_state('load')
        return self.page

    def foreign_requests(self):
        return [u for u in self.requests if not u.startswith(('file://', 'data:'))]


@pytest.fixture()
def page(browser):
    p = Page(browser)
    yield p
    p.page.close()


@pytest.fixture(scope='module')
def moved(report_run, tmp_path_factory):
    """The run's output folder moved elsewhere (every link is relative)."""
    out, _, _ = report_run
    target = tmp_path_factory.mktemp('moved') / 'results'
    shutil.copytree(out, target)
    return target


def screenshot(locator):
    """(SIZE, SIZE, 3) RGB of the canvas ``locator`` as the page shows it: a screenshot of
    the page clipped to the canvas (its box rounded to whole pixels: the silhouette checks
    allow 2 px)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert abs(box['width'] - SIZE) < 1 and abs(box['height'] - SIZE) < 1, box
    png = locator.page.screenshot(clip={'x': round(box['x']), 'y': round(box['y']),
                                        'width': SIZE, 'height': SIZE})
    return np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)


def open_view(page, data_file):
    """Click the 3-D button of output ``data_file``; -> the canvas once it has drawn."""
    page.click('button.view[data-file="%s"]' % data_file)
    canvas = page.locator('.viewer canvas[data-drawn]')
    canvas.wait_for()
    page.wait_for_timeout(200)
    return canvas


def silhouette(vertices, faces, camera_frame, zoom=1.0, center=None, radius=None):
    """The mask (SIZE, SIZE) of the triangles as report.js's camera sees them (yaw, pitch 0):
    computed here from the vertices (float64), the frame turn, the bounding box, the field of
    view, and drawn with PIL's polygon rasterizer."""
    p = np.asarray(vertices, np.float64) * ([1, -1, -1] if camera_frame else [1, 1, 1])
    if center is None:
        center = (p.min(0) + p.max(0)) / 2
        radius = np.sqrt(((p - center) ** 2).sum(1).max())
    half = math.radians(FOV_DEG) / 2
    dist = radius / math.sin(half) * MARGIN * zoom
    eye = p - center - [0, 0, dist]
    f = 1 / math.tan(half)
    px = (f * eye[:, 0] / -eye[:, 2] + 1) / 2 * SIZE
    py = (1 - f * eye[:, 1] / -eye[:, 2]) / 2 * SIZE
    image = Image.new('L', (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(image)
    for tri in faces:
        draw.polygon([(px[i], py[i]) for i in tri], fill=255)
    return np.asarray(image) > 0, (center, radius)


def check_drawn(pixels, mask):
    """Inside the silhouette (2 px in from its edge) the canvas is not the background; outside
    (2 px off it) it is."""
    assert pixels.shape[:2] == mask.shape
    background = np.abs(pixels - BACKGROUND).max(axis=2) <= 3
    inside = ndimage.binary_erosion(mask, iterations=2)
    outside = ~ndimage.binary_dilation(mask, iterations=2)
    assert inside.sum() > 0.1 * mask.size  # the head fills a good part of the view
    assert (~background[inside]).mean() > 0.995, (~background[inside]).mean()
    assert background[outside].mean() > 0.995, background[outside].mean()


def test_report_opens_offline_and_names_the_failure(page, moved, report_run):
    _, _, folder = report_run
    p = page.open(moved)
    rows = p.locator('article.row')
    assert rows.count() == 4
    first = rows.nth(0)
    assert 'failed' in first.get_attribute('class')
    assert str(folder / 'broken.jpg') in first.locator('.input').inner_text()
    assert 'broken.jpg: not a readable image' in first.locator('.error').inner_text()
    p.wait_for_function('() => [...document.images].filter(i => i.getBoundingClientRect().top'
                        ' < innerHeight).every(i => i.complete && i.naturalWidth > 0)')
    assert 'RingNet run' in p.locator('header h1').inner_text()
    assert page.errors == [] and page.foreign_requests() == []


def test_viewer_draws_the_mesh_orbits_and_zooms(page, moved):
    p = page.open(moved)
    canvas = open_view(p, 'mesh/000001_face0.obj')
    mesh = trimesh.load(str(moved / 'mesh' / '000001_face0.obj'), process=False,
                        maintain_order=True)
    mask, _ = silhouette(mesh.vertices, mesh.faces, camera_frame=True)
    first = screenshot(canvas)
    check_drawn(first, mask)
    box = canvas.bounding_box()
    p.mouse.move(box['x'] + 240, box['y'] + 240)
    p.mouse.down()
    p.mouse.move(box['x'] + 340, box['y'] + 250, steps=5)
    p.mouse.up()
    p.wait_for_timeout(200)
    turned = screenshot(canvas)
    assert (np.abs(turned - first).max(axis=2) > 30).mean() > 0.03  # the head turned
    canvas.dblclick()
    p.wait_for_timeout(200)
    assert np.abs(screenshot(canvas) - first).max() <= 2  # reset: the first view again
    p.mouse.move(box['x'] + 240, box['y'] + 240)
    p.mouse.wheel(0, -300)  # zoom in: exp(-0.3) of the distance
    p.wait_for_timeout(200)
    zoomed = screenshot(canvas)
    check_drawn(zoomed, silhouette(mesh.vertices, mesh.faces, True, zoom=math.exp(-0.3))[0])
    assert page.errors == [] and page.foreign_requests() == []


def test_textured_view_shows_the_texture(page, moved):
    p = page.open(moved)
    plain = screenshot(open_view(p, 'mesh/000001_face0.obj'))
    p.click('button.view[data-file="texture/000001_face0.obj"]')
    p.locator('.viewer canvas[data-textured="1"]').wait_for()
    p.wait_for_timeout(300)
    textured = screenshot(p.locator('.viewer canvas'))
    mesh = trimesh.load(str(moved / 'mesh' / '000001_face0.obj'), process=False)
    mask, _ = silhouette(mesh.vertices, mesh.faces, camera_frame=True)
    check_drawn(textured, mask)  # the same vertices as mesh/000001_face0.obj
    inside = ndimage.binary_erosion(mask, iterations=2)
    assert np.abs(textured - plain).max(axis=2)[inside].mean() > 20  # not the plain shading
    # the plain shading is one colour times the light (its chromaticity hardly varies);
    # the texture's colours vary (hair, skin, lips, the suit)
    def chroma_spread(pixels):
        rgb = pixels[inside] + 1.0
        return (rgb / rgb.sum(axis=1, keepdims=True)).std(axis=0).mean()
    assert chroma_spread(textured) > 3 * chroma_spread(plain), (chroma_spread(textured),
                                                                chroma_spread(plain))
    assert page.errors == [] and page.foreign_requests() == []


def test_overlay_video_plays(page, moved):
    p = page.open(moved)
    video = p.locator('article.row video')
    video.scroll_into_view_if_needed()
    assert video.get_attribute('src') == 'video/clip.mp4'
    p.evaluate('() => document.querySelector("article.row video").play()')
    p.wait_for_function('() => document.querySelector("article.row video").currentTime > 0.3',
                        timeout=20000)
    state = p.evaluate('() => { const v = document.querySelector("article.row video");'
                       ' return [v.error, v.videoWidth, v.videoHeight, v.duration]; }')
    assert state[:3] == [None, 320, 240]
    assert state[3] == pytest.approx(REPORT_CLIP_FRAMES / 25, abs=0.05)
    assert page.errors == [] and page.foreign_requests() == []


def test_the_runs_glb_is_textured_and_its_sliders_move_it(page, moved):
    """glb/000001_face0.glb as --save_glb wrote it, read here with tests/gltf_reader.py: the
    view shows its base mesh with the predicted expression (the demo's: zero), textured with
    the embedded image; exp00 at 3 shows base + 3 x its target."""
    doc, binary = gltf_parse((moved / 'glb' / '000001_face0.glb').read_bytes())
    primitive = doc['meshes'][0]['primitives'][0]
    base = gltf_accessor(doc, binary, primitive['attributes']['POSITION'])
    faces = gltf_accessor(doc, binary, primitive['indices']).reshape(-1, 3)
    target = gltf_accessor(doc, binary, primitive['targets'][0]['POSITION'])
    assert not any(doc['meshes'][0]['weights'])  # the --demo model's mean expression
    p = page.open(moved)
    canvas = open_view(p, 'glb/000001_face0.glb')
    p.locator('.viewer canvas[data-textured="1"]').wait_for()
    p.wait_for_timeout(300)
    mask, camera = silhouette(base, faces, camera_frame=False)
    first = screenshot(canvas)
    check_drawn(first, mask)
    assert p.locator('.viewer .sliders input').count() == 50
    p.evaluate('() => { const s = document.querySelector(".viewer .sliders input");'
               ' s.value = "3"; s.dispatchEvent(new Event("input", {bubbles: true})); }')
    p.wait_for_timeout(300)
    moved_mask = silhouette(base + 3 * target, faces, False, 1.0, *camera)[0]
    after = screenshot(canvas)
    check_drawn(after, moved_mask)
    # the synthetic model's exp00 moves the face inside its outline: the shading changes
    changed = np.abs(after - first).max(axis=2) > 20
    assert changed[mask].mean() > 0.02, changed[mask].mean()
    assert page.errors == [] and page.foreign_requests() == []


@pytest.fixture(scope='module')
def glb_folder(report_run, tmp_path_factory):
    """A report of one input with a GLB: the run's neutral head (FLAME's frame), two morph
    targets (exp00: the lower half 2 cm down; exp01: 10 % wider), default weights 0 and 0.5."""
    out, _, _ = report_run
    neutral = trimesh.load(str(out / 'neutral_mesh' / '000001_face0.obj'), process=False,
                           maintain_order=True)
    v = np.asarray(neutral.vertices, np.float32)
    lower = np.zeros_like(v)
    lower[v[:, 1] < np.median(v[:, 1]), 1] = -0.02
    wider = np.zeros_like(v)
    wider[:, 0] = 0.1 * v[:, 0]
    folder = tmp_path_factory.mktemp('glb_report')
    (folder / 'glb').mkdir()
    (folder / 'glb' / 'head.glb').write_bytes(glb_bytes(
        v, neutral.faces, [lower, wider], names=['exp00', 'exp01'], weights=[0.0, 0.5]))
    records = [{'input': 'head.jpg', 'status': 'ok', 'error': None, 'faces': None,
                'outputs': ['glb/head.glb'], 'seconds': 1.0}]
    write_files(str(folder), report_files(records, {'inputs': 1, 'seconds': 1.0}, str(folder)),
                prune=['report'])
    return folder, v, np.asarray(neutral.faces), lower, wider


def test_glb_view_has_expression_sliders_that_move_the_mesh(page, glb_folder):
    folder, v, faces, lower, wider = glb_folder
    p = page.open(folder)
    canvas = open_view(p, 'glb/head.glb')
    sliders = p.locator('.viewer .sliders input[type=range]')
    assert sliders.count() == 2
    assert p.locator('.viewer .sliders span').all_inner_texts() == ['exp00', 'exp01']
    assert [float(sliders.nth(k).input_value()) for k in range(2)] == [0.0, 0.5]
    # the camera is placed on the base mesh; the defaults are applied on it
    base_mask, camera = silhouette(v, faces, camera_frame=False)
    check_drawn(screenshot(canvas), silhouette(v + 0.5 * wider, faces, False, 1.0,
                                               *camera)[0])
    p.evaluate('() => { const s = document.querySelectorAll(".viewer .sliders input");'
               ' s[0].value = "2"; s[0].dispatchEvent(new Event("input", {bubbles: true}));'
               ' s[1].value = "-1"; s[1].dispatchEvent(new Event("input", {bubbles: true})); }')
    p.wait_for_timeout(300)
    moved_mask = silhouette(v + 2 * lower - wider, faces, False, 1.0, *camera)[0]
    check_drawn(screenshot(canvas), moved_mask)
    assert (moved_mask != base_mask).mean() > 0.02  # the morph shows, not just the base
    p.click('.viewer button[data-act="reset"]')
    p.wait_for_timeout(300)
    check_drawn(screenshot(canvas), silhouette(v + 0.5 * wider, faces, False, 1.0,
                                               *camera)[0])
    assert page.errors == [] and page.foreign_requests() == []


def test_pages_of_a_large_report(page, tmp_path):
    records = [{'input': 'in/%04d.jpg' % k, 'status': 'failed' if k % 40 == 7 else 'ok',
                'error': 'in/%04d.jpg: bad' % k if k % 40 == 7 else None, 'faces': None,
                'outputs': [], 'seconds': 0.5} for k in range(2 * PAGE_SIZE + 10)]
    write_files(str(tmp_path), report_files(records, {'inputs': len(records), 'seconds': 1.0},
                                            str(tmp_path)), prune=['report'])
    p = page.open(tmp_path)
    rows = p.locator('article.row')
    assert rows.count() == PAGE_SIZE
    assert [rows.nth(k).locator('.input').inner_text() for k in range(3)] == [
        'in/0007.jpg', 'in/0047.jpg', 'in/0087.jpg']  # the failures first
    assert 'rows 1–50 of 110' in p.locator('nav.pager').first.inner_text()
    p.locator('nav.pager').first.locator('button', has_text='next').click()
    p.wait_for_function('() => document.querySelectorAll("article.row").length === %d'
                        ' && location.hash === "#page2"' % PAGE_SIZE)
    order = ([r['input'] for r in records if r['status'] == 'failed']
             + [r['input'] for r in records if r['status'] != 'failed'])
    assert rows.nth(0).locator('.input').inner_text() == order[PAGE_SIZE]
    p.locator('nav.pager').first.locator('input').fill('3')
    p.locator('nav.pager').first.locator('input').dispatch_event('change')
    p.wait_for_function('() => document.querySelectorAll("article.row").length === 10')
    p.reload()  # the page number survives a reload
    p.wait_for_function('() => document.querySelectorAll("article.row").length === 10')
    assert page.errors == [] and page.foreign_requests() == []
