"""util.io.video_io: frames in as a stream, the overlay video out; checked with PyAV (FFmpeg
without OpenCV) as the second decoder, and with clips whose pixels encode their frame number."""
import fractions
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from conftest import ROOT
from util.io.video_io import VideoError, VideoReader, VideoWriter, even_size


def numbered_clip(path, n, fps=25.0, size=(96, 64), fourcc='MJPG'):
    """A clip whose frame k is flat grey level 4k (+ a pattern), written with OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for k in range(n):
        frame = np.full((size[1], size[0], 3), 4 * k, dtype=np.uint8)
        frame[:, :8] = (0, 0, 255)  # red on the left in BGR: checks the channel order
        writer.write(frame)
    writer.release()
    return str(path)


def grey_level(rgb):
    return float(np.median(rgb[:, 16:]))


def test_frames_stream_in_order_with_times_and_rgb(tmp_path):
    path = numbered_clip(tmp_path / 'c.avi', 30, fps=25.0)
    with VideoReader(path) as reader:
        assert reader.info == (25.0, 30, 96, 64)
        frames = list(reader.frames())
    assert [f.index for f in frames] == list(range(30))
    np.testing.assert_allclose([f.time_s for f in frames], np.arange(30) / 25.0, atol=1e-9)
    assert all(abs(grey_level(f.image) - 4 * f.index) <= 2 for f in frames)
    assert frames[0].image[32, 2].tolist()[0] > 200 > frames[0].image[32, 2].tolist()[2]  # RGB


def test_every_n_and_max_frames_thin_the_stream(tmp_path):
    path = numbered_clip(tmp_path / 'c.avi', 30)
    with VideoReader(path) as reader:
        frames = list(reader.frames(every_n=4, max_frames=5))
    assert [f.index for f in frames] == [0, 4, 8, 12, 16]
    assert all(abs(grey_level(f.image) - 4 * f.index) <= 2 for f in frames)
    with VideoReader(path) as reader:
        assert [f.index for f in reader.frames(every_n=7)] == [0, 7, 14, 21, 28]


def test_cut_file_keeps_the_frames_before_the_cut_then_fails(tmp_path):
    path = numbered_clip(tmp_path / 'c.avi', 40)
    cut = tmp_path / 'cut.avi'
    data = open(path, 'rb').read()
    cut.write_bytes(data[:len(data) // 2])
    got = []
    with VideoReader(str(cut)) as reader, \
            pytest.raises(VideoError, match=r'cut\.avi: decoding stopped at frame \d+ of 40'):
        for frame in reader.frames():
            got.append(frame.index)
    assert 5 < len(got) < 40 and got == list(range(len(got)))


def test_files_that_are_not_videos_or_have_no_frames_are_one_line_errors(tmp_path):
    junk = tmp_path / 'junk.mp4'
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(VideoError, match="junk.mp4: not an image or a video"):
        VideoReader(str(junk))
    with pytest.raises(VideoError, match='no such file'):
        VideoReader(str(tmp_path / 'missing.mp4'))
    with pytest.raises(VideoError, match='is a folder'):
        VideoReader(str(tmp_path))
    empty = numbered_clip(tmp_path / 'empty.avi', 0)
    with VideoReader(empty) as reader, pytest.raises(VideoError, match='has no frames'):
        list(reader.frames())


@pytest.mark.parametrize('size', [(96, 64), (97, 63)])
def test_written_video_reads_back_with_pyav(tmp_path, size):
    """Frame count, rate, size and content through a second decoder; odd sizes are padded
    by repeating the last column / row (4:2:0 needs even sides)."""
    width, height = size
    path = str(tmp_path / 'o.mp4')
    rng = np.random.default_rng(0)
    blocks = [np.kron(rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3)),
                      np.ones((8, 8, 1)))[:height, :width].astype(np.uint8) for _ in range(12)]
    with VideoWriter(path, 30.0, width, height) as writer:
        for frame in blocks:
            writer.write(frame)
    with av.open(path) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 30
        decoded = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    assert (stream.codec_context.width, stream.codec_context.height) == even_size(width, height)
    assert len(decoded) == 12
    for got, want in zip(decoded, blocks):
        assert np.abs(got[:height, :width].astype(int) - want).mean() < 12  # codec loss only
    if (width, height) != even_size(width, height):
        np.testing.assert_allclose(decoded[0][:, -1].astype(int), decoded[0][:, -2], atol=40)
    with pytest.raises(VideoError, match='frame of 10x10'):
        with VideoWriter(path, 30.0, width, height) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))


def top_level_boxes(path):
    """[(type, offset)] of an MP4 file's top-level boxes, read from their 32/64-bit sizes
    (ISO/IEC 14496-12 §4.2), independently of any video library."""
    boxes, data = [], open(path, 'rb').read()
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], 'big')
        kind = data[offset + 4:offset + 8].decode('latin-1')
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], 'big')
        elif size == 0:
            size = len(data) - offset
        boxes.append((kind, offset))
        assert size >= 8, (kind, offset, size)
        offset += size
    assert offset == len(data)
    return [kind for kind, _ in boxes]


def test_written_video_is_browser_h264_with_the_index_first(tmp_path):
    """What a browser needs: H.264 in 4:2:0 (yuv420p), the moov box before the media data
    (a player starts without seeking to the end), BT.601 limited range tagged; colours (and
    the channel order) come back."""
    path = str(tmp_path / 'o.mp4')
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (20, 200, 90)]
    with VideoWriter(path, 30000 / 1001, 64, 48) as writer:
        for colour in colours:
            writer.write(np.full((48, 64, 3), colour, np.uint8))
    kinds = top_level_boxes(path)
    assert kinds[0] == 'ftyp' and kinds.index('moov') < kinds.index('mdat'), kinds
    with av.open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        assert (context.name, context.pix_fmt) == ('h264', 'yuv420p')
        assert stream.average_rate == fractions.Fraction(30000, 1001)
        assert (int(context.colorspace), int(context.color_range)) == (5, 1)  # BT.601, tv
        decoded = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    np.testing.assert_allclose([f[24, 32] for f in decoded], colours, atol=4)


def test_writing_prints_nothing(tmp_path):
    """In a fresh process, as in the command: libx264's banner and statistics stay off
    stderr (they would break the progress bar's lines)."""
    code = ('import numpy as np, sys; from util.io.video_io import VideoWriter\n'
            'with VideoWriter(sys.argv[1], 25.0, 33, 17) as w:\n'
            '    [w.write(np.full((17, 33, 3), 9 * k, np.uint8)) for k in range(5)]\n')
    proc = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'q.mp4')],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == '' and proc.stderr == '', proc.stderr
    with av.open(str(tmp_path / 'q.mp4')) as container:
        assert len(list(container.decode(video=0))) == 5


def test_close_twice_and_no_frame(tmp_path):
    """abort() and finish() may both close; a writer that got no frame leaves no index to
    flush and does not raise."""
    writer = VideoWriter(str(tmp_path / 'e.mp4'), 25.0, 32, 32)
    writer.close()
    writer.close()


def pyav_clip(path, times_s, container_format=None, codec='mpeg4', ticks=1000):
    """A clip written with PyAV whose frame k is shown at times_s[k] (time base 1 / ticks)."""
    with av.open(str(path), 'w', format=container_format) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        stream.codec_context.time_base = fractions.Fraction(1, ticks)
        for k, t in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * k % 256, np.uint8),
                                               format='rgb24')
            frame.pts = int(round(t * ticks))
            frame.time_base = fractions.Fraction(1, ticks)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def test_variable_frame_rate_mkv_is_not_called_damaged(tmp_path):
    """20 frames at 30 fps then 10 at 5 fps: MKV has no frame count, OpenCV estimates one from
    the duration at the nominal rate (81 here); every frame decodes and the clip is whole."""
    times = [k / 30 for k in range(20)] + [20 / 30 + k / 5 for k in range(10)]
    path = pyav_clip(tmp_path / 'vfr.mkv', times)
    with VideoReader(path) as reader:
        assert reader.info.frame_count > 30  # the estimate the old rule tripped over
        frames = list(reader.frames())
    assert len(frames) == 30
    np.testing.assert_allclose([f.time_s for f in frames], times, atol=2e-3)


def test_times_always_move_forward(tmp_path):
    """A raw MPEG-1 stream has no container timestamps for its last, flushed frame (OpenCV
    says 0): the time goes on at 1 / fps instead of jumping back."""
    path = pyav_clip(tmp_path / 'es.mpg', [k / 25 for k in range(8)], 'mpeg1video',
                     'mpeg1video', ticks=25)
    with VideoReader(path) as reader:
        times = [f.time_s for f in reader.frames()]
    assert len(times) == 8 and np.all(np.diff(times) > 0), times
    np.testing.assert_allclose(times, np.arange(8) / reader.info.fps, atol=1e-6)
