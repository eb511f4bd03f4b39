"""Video input end to end (issue #11): ``python -m demo`` on a clip built here, checked against
single-image runs on the same decoded frames, with PyAV as a second, independent decoder.

The clip: the head of skimage.data.astronaut() (NASA portrait of Eileen Collins, public
domain) pasted on smooth noise, moving right and down and growing over 60 frames at 25 fps,
320 x 240, written with OpenCV as Motion-JPEG in an AVI. The network is the synthetic
checkpoint of conftest.py (random weights: its outputs depend on the image, unlike --demo's).
For exact equality the frames given to the single-image runs are decoded with OpenCV (the
product's decoder) and saved as PNG (lossless); PyAV reads the files the product wrote.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')
av = pytest.importorskip('av')

from output_sets import files_under  # noqa: E402
from test_detect import _paste_head, _smooth_noise  # noqa: E402
from summary_line import without_speed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FPS = 25
WIDTH, HEIGHT = 320, 240
N_FRAMES = 60
CHECKED = (0, 17, 33, 59)  # frames also run as single images
PARAMS = ('cam', 'pose', 'shape', 'expression')
PARAM_TOL = 1e-5
MESH_TOL = 1e-6
CODEC_NAMES = {'H.264': 'h264'}  # summary line -> PyAV codec


def head_path(k):
    """Where the head is in frame k: (height, x0, y0), linear over the clip."""
    t = k / (N_FRAMES - 1)
    return int(round(120 + 60 * t)), int(round(20 + 120 * t)), int(round(10 + 20 * t))


def write_clip(path, n_frames=N_FRAMES, fourcc='MJPG'):
    background = _smooth_noise(HEIGHT, WIDTH, 5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(FPS),
                             (WIDTH, HEIGHT))
    assert writer.isOpened()
    for k in range(n_frames):
        frame = background.copy()
        _paste_head(frame, *head_path(k), False)
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def cv2_frames(path):
    """Every frame OpenCV's FFmpeg decodes from ``path``, as RGB (the product's decoding)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr[..., ::-1].copy())
    cap.release()
    return frames


def pyav_video(path):
    """(frames RGB, average frame rate, codec name) of a video, decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate, codec = stream.average_rate, stream.codec_context.name
        frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    return frames, rate, codec


def obj_vertices(path):
    """(V,3) float64 of the 'v' lines of an OBJ file."""
    with open(path) as fh:
        return np.array([[float(x) for x in line.split()[1:4]] for line in fh
                         if line.startswith('v ')])


def single_params(out, name):
    return np.load(str(out / 'params' / (name + '.npy')), allow_pickle=True)[()]


def frame_name(k):
    return 'f%06d' % k


def run_demo(args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'demo'] + [str(a) for a in args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith('error:')]


def manifest(out):
    with open(out / 'manifest.jsonl') as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope='module')
def model(checkpoint_v2, flame_assets):
    return ['--load_path', checkpoint_v2, '--flame_model_path', flame_assets['flame_model'],
            '--flame_texture_data_path', flame_assets['texture_data'],
            '--flame_static_embedding_path', flame_assets['static_embedding'],
            '--flame_dynamic_embedding_path', flame_assets['dynamic_embedding']]


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp('clip') / 'clip.avi'
    write_clip(path)
    return path


@pytest.fixture(scope='module')
def decoded(clip):
    frames = cv2_frames(clip)
    assert len(frames) == N_FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3)
    return frames


@pytest.fixture(scope='module')
def png_frames(tmp_path_factory, decoded):
    """The CHECKED decoded frames as lossless PNG files f<k:06d>.png in one folder."""
    folder = tmp_path_factory.mktemp('frames')
    for k in CHECKED:
        assert cv2.imwrite(str(folder / (frame_name(k) + '.png')),
                           np.ascontiguousarray(decoded[k][..., ::-1]))
    return folder


@pytest.fixture(scope='module')
def mixed_folder(tmp_path_factory, clip, decoded):
    """clip.avi and an image x.png in one folder."""
    folder = tmp_path_factory.mktemp('mixed')
    shutil.copy(str(clip), str(folder / 'clip.avi'))
    cv2.imwrite(str(folder / 'x.png'), np.ascontiguousarray(decoded[40][..., ::-1]))
    return folder


@pytest.fixture(scope='module')
def odd_clip(tmp_path_factory, clip):
    """The clip as clip.dat: an extension neither list knows."""
    path = tmp_path_factory.mktemp('odd') / 'clip.dat'
    shutil.copy(str(clip), str(path))
    return path


@pytest.fixture(scope='module')
def bad_folder(tmp_path_factory, clip, decoded):
    """batch.txt listing junk named bad.mp4, the clip cut to half its bytes, an AVI without
    frames and a good image."""
    folder = tmp_path_factory.mktemp('bad')
    (folder / 'bad.mp4').write_bytes(np.random.default_rng(0).bytes(50000))
    data = clip.read_bytes()
    (folder / 'cut.avi').write_bytes(data[:len(data) // 2])
    writer = cv2.VideoWriter(str(folder / 'empty.avi'), cv2.VideoWriter_fourcc(*'MJPG'),
                             float(FPS), (WIDTH, HEIGHT))
    writer.release()  # an AVI with its headers and no frame
    assert (folder / 'empty.avi').stat().st_size > 0
    cv2.imwrite(str(folder / 'good.png'), np.ascontiguousarray(decoded[5][..., ::-1]))
    (folder / 'batch.txt').write_text('bad.mp4\ncut.avi\nempty.avi\ngood.png\n')
    return folder


# Every CLI run of this module: (fixture name, its input fixture, flags). Each costs about 5 s
# of start-up, so the runs the selected tests need are all started at once, CONCURRENT at a
# time, in the background, and each fixture waits for its own.
RUNS = [
    ('clip_run', 'clip', ['--save_flame_parameters', '--save_obj_file', '--save_landmarks']),
    ('single_run', 'png_frames', ['--save_flame_parameters', '--save_obj_file',
                                  '--save_landmarks']),
    ('detect_clip_run', 'clip', ['--detect_faces', '--save_flame_parameters']),
    ('detect_single_run', 'png_frames', ['--detect_faces', '--max_faces', 1,
                                         '--save_flame_parameters']),
    ('smooth_run', 'clip', ['--smooth']),
    ('mixed_run', 'mixed_folder', ['--every_n_frames', 7, '--max_frames', 5,
                                   '--save_obj_file']),
    ('odd_run', 'odd_clip', ['--max_frames', 3]),
    ('bad_run', 'bad_folder', ['--save_obj_file']),
]
CONCURRENT = 3


@pytest.fixture(scope='module')
def background(request, tmp_path_factory, model):
    """{run name: Future of (input path, output folder, CompletedProcess)}."""
    wanted = set()
    for item in request.session.items:
        if item.module is request.module:
            wanted.update(item.fixturenames)
    pool = concurrent.futures.ThreadPoolExecutor(CONCURRENT)
    futures = {}
    for name, source, flags in RUNS:
        if name not in wanted:
            continue
        path = request.getfixturevalue(source)
        if source == 'bad_folder':
            path = path / 'batch.txt'
        out = tmp_path_factory.mktemp(name)
        futures[name] = pool.submit(
            lambda path=path, out=out, flags=flags: (path, out, run_demo(
                ['--img_path', path, '--out_folder', out] + flags + model)))
    yield futures
    pool.shutdown(wait=True)


def finished(background, name, check=True):
    path, out, proc = background[name].result()
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return path, out, proc


@pytest.fixture(scope='module')
def clip_run(background):
    _, out, proc = finished(background, 'clip_run')
    return out, proc, np.load(str(out / 'params' / 'clip.npz'))


@pytest.fixture(scope='module')
def single_run(background):
    return finished(background, 'single_run')[1]


@pytest.fixture(scope='module')
def detect_clip_run(background):
    return finished(background, 'detect_clip_run')[1]


@pytest.fixture(scope='module')
def detect_single_run(background):
    return finished(background, 'detect_single_run')[1]


@pytest.fixture(scope='module')
def smooth_run(background):
    return finished(background, 'smooth_run')[1]


@pytest.fixture(scope='module')
def mixed_run(background):
    return finished(background, 'mixed_run', check=False)


@pytest.fixture(scope='module')
def odd_run(background):
    return finished(background, 'odd_run', check=False)


@pytest.fixture(scope='module')
def bad_run(background):
    return finished(background, 'bad_run', check=False)


# 1. one row per frame, each equal to a single-image run on the same decoded frame

def test_track_has_one_found_row_per_frame(clip_run):
    out, proc, track = clip_run
    assert track['frame'].tolist() == list(range(N_FRAMES))
    assert track['found'].dtype == bool and track['found'].all()
    for key, width in (('cam', 3), ('pose', 6), ('shape', 100), ('expression', 50)):
        assert track[key].shape == (N_FRAMES, width) and track[key].dtype == np.float32, key
        assert np.isfinite(track[key]).all(), key
    assert track['box'].shape == (N_FRAMES, 4)
    assert track['landmarks_2d'].shape == (N_FRAMES, 68, 2)
    assert track['landmarks_3d'].shape == (N_FRAMES, 68, 3)
    # no detection: the box is the whole frame
    np.testing.assert_array_equal(track['box'], np.tile([0, 0, WIDTH, HEIGHT], (N_FRAMES, 1)))
    [record] = manifest(out)
    assert record['status'] == 'ok' and record['frames'] == N_FRAMES
    assert sorted(record['outputs'] + ['manifest.jsonl']) == files_under(out)
    assert sorted(os.listdir(out / 'mesh' / 'clip')) == ['%06d.obj' % k
                                                         for k in range(N_FRAMES)]


def test_times_are_frame_over_fps(clip, clip_run):
    _, _, track = clip_run
    with av.open(str(clip)) as container:
        rate = float(container.streams.video[0].average_rate)
    assert rate == FPS
    assert float(track['fps']) == rate
    np.testing.assert_allclose(track['time_s'], np.arange(N_FRAMES) / rate, rtol=0, atol=1e-6)


def test_json_twin_holds_the_same_columns(clip_run):
    out, _, track = clip_run
    record = json.load(open(out / 'params' / 'clip.json'))
    assert record['frame'] == list(range(N_FRAMES))
    assert record['found'] == [True] * N_FRAMES
    np.testing.assert_allclose(record['time_s'], track['time_s'], atol=1e-12)
    for key in PARAMS:
        np.testing.assert_allclose(np.array(record[key]), track[key], rtol=0, atol=1e-7)


def test_rows_equal_single_image_runs_on_the_decoded_frames(clip_run, single_run):
    _, _, track = clip_run
    for k in CHECKED:
        single = single_params(single_run, frame_name(k))
        for key in PARAMS:
            np.testing.assert_allclose(track[key][k], single[key].ravel(), rtol=0,
                                       atol=PARAM_TOL, err_msg='frame %d %s' % (k, key))
        points = np.loadtxt(str(single_run / 'landmarks' / (frame_name(k) + '_2d.txt')))
        np.testing.assert_allclose(track['landmarks_2d'][k], points, rtol=0, atol=1e-4)
        points = np.loadtxt(str(single_run / 'landmarks' / (frame_name(k) + '_3d.txt')))
        np.testing.assert_allclose(track['landmarks_3d'][k], points, rtol=0, atol=1e-6)


def test_checked_frames_really_differ(clip_run, single_run):
    """The frames compared above give clearly different parameters (and the rows differ from
    each other), so the equality cannot hold by accident."""
    _, _, track = clip_run
    for i, a in enumerate(CHECKED):
        for b in CHECKED[i + 1:]:
            pa, pb = single_params(single_run, frame_name(a)), single_params(single_run,
                                                                              frame_name(b))
            gap = max(np.abs(pa[key] - pb[key]).max() for key in PARAMS)
            assert gap > 100 * PARAM_TOL, (a, b, gap)
            assert np.abs(track['pose'][a] - track['pose'][b]).max() > 100 * PARAM_TOL
    steps = np.abs(np.diff(track['pose'], axis=0)).max(axis=1)
    assert (steps > 10 * PARAM_TOL).all()  # every frame is its own prediction


def test_frame_meshes_equal_single_image_meshes(clip_run, single_run):
    out, _, _ = clip_run
    for k in CHECKED:
        mesh = obj_vertices(out / 'mesh' / 'clip' / ('%06d.obj' % k))
        single = obj_vertices(single_run / 'mesh' / (frame_name(k) + '.obj'))
        assert mesh.shape == single.shape == (5023, 3)
        np.testing.assert_allclose(mesh, single, rtol=0, atol=MESH_TOL, err_msg=str(k))
    first, last = (obj_vertices(out / 'mesh' / 'clip' / ('%06d.obj' % k)) for k in (0, 59))
    assert np.abs(first - last).max() > 1e-4


# 2. the overlay video

MESH_DIFF = 60  # a pixel is "mesh" where it differs from the input frame by more (sum RGB)
# Measured with PyAV 18's libx264 (crf 18, yuv420p), 320 x 240: video frame k against the
# single-image panel of frame k: mean absolute difference 1.8 to 2.2 (vs 7.6 to 27.4 against
# another checked frame's panel), mesh masks (both against input frame k) IoU 0.990 to 0.991
# (vs 0.52 to 0.82 with another checked frame's panel); outside the mesh, against input frame
# k: 1.7 to 2.3 (vs 2.6 to 7.4 against frames k - 1 and k + 1).
OVERLAY_MAD = 4.0
OVERLAY_IOU = 0.97


def mesh_mask(picture, frame):
    return np.abs(picture.astype(int) - frame.astype(int)).sum(axis=2) > MESH_DIFF


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def mad(a, b, where=None):
    diff = np.abs(a.astype(int) - b.astype(int))
    return (diff if where is None else diff[where]).mean()


def test_overlay_video_has_the_clips_frames_rate_and_size(clip, clip_run, decoded):
    out, proc, _ = clip_run
    frames, rate, codec = pyav_video(out / 'video' / 'clip.mp4')
    _, in_rate, _ = pyav_video(clip)
    assert len(frames) == N_FRAMES
    assert rate == in_rate == FPS
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    summary = without_speed(proc.stdout.strip().splitlines()[-1])
    assert summary.startswith('1 of 1 input(s) done, outputs in %s, overlay videos in ' % out)
    assert CODEC_NAMES[summary.rsplit(' in ', 1)[1]] == codec
    # frame k is input frame k (in order, none dropped or doubled): outside the mesh it is
    # nearer to it than to its neighbours
    for k, frame in enumerate(frames):
        outside = ~mesh_mask(frame, decoded[k])
        near = {j: mad(frame, decoded[j], outside) for j in (k - 1, k, k + 1) if 0 <= j < N_FRAMES}
        assert min(near, key=near.get) == k and near[k] < OVERLAY_MAD, (k, near)


def test_overlay_video_frames_are_the_single_image_overlay_panels(clip_run, single_run,
                                                                  decoded):
    out, _, _ = clip_run
    frames, _, _ = pyav_video(out / 'video' / 'clip.mp4')
    panels = {}
    for k in CHECKED:
        panel = cv2.imread(str(single_run / 'images' / (frame_name(k) + '.png')))[..., ::-1]
        assert panel.shape == (HEIGHT, 4 * WIDTH, 3)
        panels[k] = panel[:, WIDTH:2 * WIDTH]
    for k in CHECKED:
        video_mask, panel_mask = mesh_mask(frames[k], decoded[k]), mesh_mask(panels[k],
                                                                              decoded[k])
        assert panel_mask.mean() > 0.1, k  # the mesh covers a real part of the frame
        assert mad(frames[k], panels[k]) < OVERLAY_MAD, (k, mad(frames[k], panels[k]))
        assert iou(video_mask, panel_mask) > OVERLAY_IOU, (k, iou(video_mask, panel_mask))
        for j in CHECKED:  # and it is the panel of that frame, not of another
            if j != k:
                assert mad(frames[k], panels[j]) > 2 * mad(frames[k], panels[k]), (k, j)
                assert iou(video_mask, mesh_mask(panels[j], decoded[j])) < iou(video_mask,
                                                                                panel_mask)


# 3. and 4. every N-th frame, at most M, in a folder with an image

KEPT = [0, 7, 14, 21, 28]  # --every_n_frames 7 --max_frames 5


def test_every_n_frames_and_max_frames(mixed_run, clip_run):
    _, out, proc = mixed_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    track = np.load(str(out / 'params' / 'clip.npz'))
    assert track['frame'].tolist() == KEPT
    np.testing.assert_allclose(track['time_s'], np.array(KEPT) / FPS, rtol=0, atol=1e-6)
    assert track['found'].all()
    frames, rate, _ = pyav_video(out / 'video' / 'clip.mp4')
    assert len(frames) == 5
    # every 7th frame at 25 / 7 fps: the video keeps the clip's timeline (docs/formats.md
    # §14); the MP4 time base stores it to 1/1000
    assert abs(float(rate) - FPS / 7) < 1e-3, rate
    # the rows are those of the kept frames (grabbing the frames in between skips nothing)
    _, _, full = clip_run
    for key in PARAMS:
        np.testing.assert_allclose(track[key], full[key][KEPT], rtol=0, atol=PARAM_TOL)
    assert sorted(os.listdir(out / 'mesh' / 'clip')) == ['%06d.obj' % k for k in KEPT]


def test_folder_of_an_image_and_a_video(mixed_run):
    folder, out, proc = mixed_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = manifest(out)
    assert [(r['input'], r['status']) for r in records] == [
        (str(folder / 'clip.avi'), 'ok'), (str(folder / 'x.png'), 'ok')]
    assert records[0]['frames'] == 5 and 'frames' not in records[1]
    expected = (['images/x.png', 'manifest.jsonl', 'mesh/x.obj', 'params/clip.npz',
                 'video/clip.mp4'] + ['mesh/clip/%06d.obj' % k for k in KEPT])
    assert files_under(out) == sorted(expected)
    assert without_speed(proc.stdout.strip().splitlines()[-1]).startswith(
        '2 of 2 input(s) done, outputs in %s, overlay videos in ' % out)
    panel = cv2.imread(str(out / 'images' / 'x.png'))
    assert panel.shape == (HEIGHT, 4 * WIDTH, 3)


# 7. --skip_existing

def test_skip_existing_reuses_a_finished_clip(mixed_run, tmp_path):
    folder, done, proc = mixed_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / 'out'
    shutil.copytree(str(done), str(out))  # copy2: mtimes kept
    before = {p: os.stat(out / p).st_mtime_ns for p in files_under(out) if p != 'manifest.jsonl'}
    # a network that cannot load: the clip must be skipped before any model is needed
    rerun = run_demo(['--img_path', folder / 'clip.avi', '--out_folder', out,
                      '--every_n_frames', 7, '--max_frames', 5, '--save_obj_file',
                      '--skip_existing', '--load_path', tmp_path / 'no_such_checkpoint'])
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert without_speed(rerun.stdout.strip().splitlines()[-1]) == (
        '0 of 1 input(s) done, 1 skipped (outputs already there), outputs in %s' % out)
    after = {p: os.stat(out / p).st_mtime_ns for p in files_under(out) if p != 'manifest.jsonl'}
    assert after == before
    [record] = manifest(out)
    assert (record['input'], record['status'], record['frames']) == (
        str(folder / 'clip.avi'), 'skipped', 5)
    assert sorted(record['outputs']) == sorted(
        ['params/clip.npz', 'video/clip.mp4'] + ['mesh/clip/%06d.obj' % k for k in KEPT])


def test_skip_existing_redoes_a_clip_whose_video_is_gone(mixed_run, tmp_path):
    """The other side: with an output missing the clip is not skipped (so the network is
    needed, and the missing checkpoint is an error)."""
    folder, done, _ = mixed_run
    out = tmp_path / 'out'
    shutil.copytree(str(done), str(out))
    (out / 'video' / 'clip.mp4').unlink()
    rerun = run_demo(['--img_path', folder / 'clip.avi', '--out_folder', out,
                      '--every_n_frames', 7, '--max_frames', 5, '--save_obj_file',
                      '--skip_existing', '--load_path', tmp_path / 'no_such_checkpoint'])
    assert rerun.returncode == 2
    assert 'skipped' not in rerun.stdout
    assert error_lines(rerun)[0].startswith('error: missing model file')


# 5. a video with an extension no list knows

def test_unusual_extension_is_opened_as_a_video(odd_run, clip_run):
    odd, out, proc = odd_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert error_lines(proc) == []
    [record] = manifest(out)
    assert (record['input'], record['status'], record['frames']) == (str(odd), 'ok', 3)
    assert files_under(out) == ['manifest.jsonl', 'params/clip.npz', 'video/clip.mp4']
    track = np.load(str(out / 'params' / 'clip.npz'))
    assert track['frame'].tolist() == [0, 1, 2]
    _, _, full = clip_run
    for key in PARAMS:
        np.testing.assert_allclose(track[key], full[key][:3], rtol=0, atol=PARAM_TOL)
    assert len(pyav_video(out / 'video' / 'clip.mp4')[0]) == 3


# 6. bad videos in a batch

def test_bad_videos_fail_one_line_each_and_the_batch_goes_on(bad_run):
    batch, out, proc = bad_run
    folder = batch.parent
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    n_cut = len(cv2_frames(folder / 'cut.avi'))
    with av.open(str(folder / 'cut.avi')) as container:
        assert sum(1 for _ in container.decode(video=0)) == n_cut  # PyAV agrees
    assert N_FRAMES // 4 < n_cut < N_FRAMES - 1  # about half (measured 32 of 60)
    assert error_lines(proc) == [
        "error: %s: not an image or a video that OpenCV's FFmpeg can decode"
        % (folder / 'bad.mp4'),
        'error: %s: decoding stopped at frame %d of %d (the file is cut or damaged)'
        % (folder / 'cut.avi', n_cut, N_FRAMES),
        'error: %s: the video has no frames' % (folder / 'empty.avi')]
    records = manifest(out)
    assert [(os.path.basename(r['input']), r['status']) for r in records] == [
        ('bad.mp4', 'failed'), ('cut.avi', 'partial'), ('empty.avi', 'failed'),
        ('good.png', 'ok')]
    assert records[1]['frames'] == n_cut
    assert records[0]['outputs'] == records[2]['outputs'] == []
    assert without_speed(proc.stdout.strip().splitlines()[-1]).startswith(
        '1 of 4 input(s) done, 1 cut short (their frames kept), outputs in %s' % out)


def test_cut_clip_keeps_exactly_its_decoded_frames(bad_run, clip_run):
    batch, out, _ = bad_run
    n_cut = len(cv2_frames(batch.parent / 'cut.avi'))
    track = np.load(str(out / 'params' / 'cut.npz'))
    assert track['frame'].tolist() == list(range(n_cut))
    assert track['found'].all()
    _, _, full = clip_run
    # the same frames as the whole clip's first ones; the last one decoded is cut short
    # (FFmpeg fills in what is missing), so it is left out of the comparison
    for key in PARAMS:
        np.testing.assert_allclose(track[key][:n_cut - 1], full[key][:n_cut - 1], rtol=0,
                                   atol=PARAM_TOL)
    assert len(pyav_video(out / 'video' / 'cut.mp4')[0]) == n_cut
    # nothing else: no temporary, no hidden staging folder
    expected = (['images/good.png', 'manifest.jsonl', 'mesh/good.obj', 'params/cut.npz',
                 'video/cut.mp4'] + ['mesh/cut/%06d.obj' % k for k in range(n_cut)])
    assert files_under(out) == sorted(expected)
    assert not (out / '.ringnet-partial').exists()
    assert sorted(manifest(out)[1]['outputs']) == sorted(p for p in expected if 'cut' in p)


# 8. --detect_faces

def test_detect_faces_follows_one_face_like_single_images(detect_clip_run, detect_single_run,
                                                          clip_run):
    out, single_out = detect_clip_run, detect_single_run
    assert sorted(os.listdir(out / 'params')) == ['clip.json', 'clip.npz']
    [record] = manifest(out)
    assert (record['status'], record['faces'], record['frames']) == ('ok', 1, N_FRAMES)
    track = np.load(str(out / 'params' / 'clip.npz'))
    assert track['frame'].tolist() == list(range(N_FRAMES)) and track['found'].all()
    for k in CHECKED:
        single = single_params(single_out, frame_name(k) + '_face0')
        for key in PARAMS:
            np.testing.assert_allclose(track[key][k], single[key].ravel(), rtol=0,
                                       atol=PARAM_TOL, err_msg='frame %d %s' % (k, key))
        box = json.load(open(single_out / 'params' / (frame_name(k) + '_face0.json')))['box']
        np.testing.assert_allclose(track['box'][k], box, rtol=0, atol=1e-6)
        # the face box lies on the pasted head, which moves along its known path
        height, x0, y0 = head_path(k)
        x_mid, y_mid = (track['box'][k][:2] + track['box'][k][2:]) / 2
        assert x0 < x_mid < x0 + height and y0 < y_mid < y0 + height, (k, track['box'][k])
    # cropping around the face is not the whole-frame crop
    _, _, whole = clip_run
    assert np.abs(track['pose'] - whole['pose']).max() > 100 * PARAM_TOL
    # the box follows the head: its centre moves right and down, its size grows
    centres = (track['box'][:, :2] + track['box'][:, 2:]) / 2
    sides = track['box'][:, 2] - track['box'][:, 0]
    assert centres[-1, 0] - centres[0, 0] > 100 and centres[-1, 1] > centres[0, 1]
    assert sides[-1] > 1.3 * sides[0]


# 9. --smooth

def jitter(values):
    """Frame-to-frame jitter of a (T, D) column: the summed variance of its steps."""
    return np.var(np.diff(values.astype(np.float64), axis=0), axis=0).sum()


def test_smooth_reduces_jitter_and_keeps_the_frames(smooth_run, clip_run):
    _, _, raw = clip_run
    track = np.load(str(smooth_run / 'params' / 'clip.npz'))
    assert track['frame'].tolist() == list(range(N_FRAMES)) and track['found'].all()
    np.testing.assert_allclose(track['time_s'], raw['time_s'], atol=1e-12)
    # the identity is one shape: the median of the per-frame shapes
    assert (track['shape'] == track['shape'][0]).all()
    np.testing.assert_allclose(track['shape'][0], np.median(raw['shape'].astype(np.float64),
                                                            axis=0), rtol=0, atol=1e-6)
    for key in ('cam', 'pose', 'expression'):
        # a One-Euro filter starts at the first sample
        np.testing.assert_allclose(track[key][0], raw[key][0], rtol=0, atol=1e-6)
        assert np.abs(track[key] - raw[key]).max() > 100 * PARAM_TOL, key
    for key in ('pose', 'expression'):
        assert jitter(track[key]) < 0.5 * jitter(raw[key]), (key, jitter(track[key]),
                                                              jitter(raw[key]))
    frames, rate, _ = pyav_video(smooth_run / 'video' / 'clip.mp4')
    assert len(frames) == N_FRAMES and rate == FPS
