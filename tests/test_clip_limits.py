"""Videos at the edges (issue #18 cases 10, 11, 13): --max_pixels from the container before any
frame is decoded, an absurd frame rate in a clip's header, a clip that loses the face in some
frames. Judged by exit status, messages and the files on disk (the overlay's rate read back
with PyAV, an independent decoder); the network is the stand-in of tests/stand_in.py."""
import json
import os
import struct

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

from output_sets import files_under  # noqa: E402
from test_detect import _paste_head, _smooth_noise  # noqa: E402
from summary_line import without_speed


def write_clip(path, frames, fps=25.0):
    """Motion-JPEG AVI of ``frames`` ([(H,W,3) uint8 RGB])."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def set_avi_rate(path, rate, scale=1):
    """Rewrite the AVI's video stream header (strh: dwScale, dwRate) to claim rate / scale
    frames per second, and clear the main header's frame duration, as a broken muxer does."""
    data = bytearray(open(path, 'rb').read())
    strh = data.find(b'strh')
    assert data[strh + 8:strh + 12] == b'vids'
    struct.pack_into('<II', data, strh + 8 + 20, scale, rate)
    struct.pack_into('<I', data, data.find(b'avih') + 8, 0)
    open(path, 'wb').write(data)


def manifest(out):
    with open(os.path.join(str(out), 'manifest.jsonl')) as fh:
        return [json.loads(line) for line in fh]


def test_a_video_over_max_pixels_is_refused_from_its_header(tmp_path, stand_in):
    """2048 x 2048 frames, --max_pixels=1000000: one line with the numbers, nothing decoded
    or written; the small clip beside it runs."""
    big, small = tmp_path / 'big.avi', tmp_path / 'small.avi'
    write_clip(big, [np.zeros((2048, 2048, 3), np.uint8)] * 2)
    write_clip(small, [np.full((96, 128, 3), 90, np.uint8)] * 3)
    (tmp_path / 'list.txt').write_text('big.avi\nsmall.avi\n')
    out = tmp_path / 'out'
    status, stdout, stderr, _ = stand_in.run(
        ['--img_path', str(tmp_path / 'list.txt'), '--out_folder', str(out),
         '--max_pixels=1000000'], tmp_path)
    assert status == 1 and 'Traceback' not in stderr
    assert [line for line in stderr.splitlines() if line.startswith('error')] == [
        'error: %s: 2048x2048 video frames have 4194304 pixels, over the limit of 1000000 '
        '(--max_pixels)' % big]
    assert [(os.path.basename(r['input']), r['status']) for r in manifest(out)] == [
        ('big.avi', 'failed'), ('small.avi', 'ok')]
    assert [f for f in files_under(out) if 'big' in f] == []


def test_an_absurd_frame_rate_is_named_and_the_track_kept(tmp_path, stand_in):
    """A header claiming 5,000,000 frames per second: a note naming the rate, the clip done
    (track, meshes, overlay), the overlay at 30 fps, exit 0."""
    av = pytest.importorskip('av')
    clip = tmp_path / 'fast.avi'
    write_clip(clip, [np.full((96, 128, 3), 40 + 10 * k, np.uint8) for k in range(6)])
    set_avi_rate(clip, 5000000)
    assert cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FPS) == 5000000
    out = tmp_path / 'out'
    status, stdout, stderr, _ = stand_in.run(
        ['--img_path', str(clip), '--out_folder', str(out), '--save_obj_file'], tmp_path)
    assert status == 0, stderr
    assert stderr.splitlines() == [
        'note: %s: its header gives a frame rate of 5e+06 frames per second, which cannot be '
        'right; the overlay video plays at 30' % clip]
    [record] = manifest(out)
    assert (record['status'], record['frames'], record['note']) == (
        'ok', 6, stderr.splitlines()[0][len('note: '):])
    assert files_under(out) == sorted(['manifest.jsonl', 'params/fast.npz', 'video/fast.mp4']
                                      + ['mesh/fast/%06d.obj' % k for k in range(6)])
    assert np.load(str(out / 'params' / 'fast.npz'))['found'].all()
    with av.open(str(out / 'video' / 'fast.mp4')) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(30.0)
        assert sum(1 for _ in container.decode(stream)) == 6


def test_a_clip_that_loses_the_face_says_in_how_many_frames_it_was_found(tmp_path, stand_in):
    """40 frames, the head in 25 of them (5 of every 8): the clip is done (exit 0), its
    manifest row has frames 40 and frames_with_face 25, and the summary says so."""
    background = _smooth_noise(240, 320, 5)
    frames = []
    for k in range(40):
        frame = background.copy()
        if k % 8 < 5:
            _paste_head(frame, 150, 80 + k, 40, False)
        frames.append(frame)
    clip = tmp_path / 'talk.avi'
    write_clip(clip, frames)
    out = tmp_path / 'out'
    status, stdout, stderr, _ = stand_in.run(
        ['--img_path', str(clip), '--out_folder', str(out), '--detect_faces'], tmp_path,
        timeout=300)
    assert status == 0, stderr
    [record] = manifest(out)
    assert (record['status'], record['frames'], record['frames_with_face']) == ('ok', 40, 25)
    found = np.load(str(out / 'params' / 'talk.npz'))['found']
    assert found.tolist() == [k % 8 < 5 for k in range(40)]
    [summary] = without_speed(stdout).splitlines()
    assert summary.startswith('1 of 1 input(s) done, outputs in %s' % out)
    assert summary.endswith('; face found in 25 of 40 frames (%s)' % clip)
