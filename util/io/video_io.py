"""Video files through OpenCV's FFmpeg: frames in as a stream, the overlay video out.

Only one decoded frame is held at a time, so memory does not grow with the clip. FFmpeg's and
OpenCV's own diagnostics are silenced: a damaged stream would print one line per frame over
the progress bar, and the caller reports the problem in one line of its own (a reader's
VideoError names the file; a writer's, whose path is a temporary, does not).
"""
import collections
import contextlib
import os
import tempfile
import threading

import cv2
import numpy as np

H264 = 'H.264'
MPEG4 = 'MPEG-4 Part 2'
FOURCC = {H264: 'avc1', MPEG4: 'mp4v'}
DEFAULT_FPS = 30.0  # for the rare file that states no frame rate

VideoInfo = collections.namedtuple('VideoInfo', 'fps frame_count width height')
VideoInfo.__doc__ = """What the container says: fps (float, > 0; DEFAULT_FPS when it states
none), frame_count (int; 0 when unknown), width and height of the decoded frames."""

VideoFrame = collections.namedtuple('VideoFrame', 'index time_s image')
VideoFrame.__doc__ = """index: the frame's number in the file (0-based, counting every frame);
time_s: its presentation time in seconds; image: (H,W,3) uint8 RGB."""


class VideoError(ValueError):
    """A video cannot be opened, read or written; the message is one line naming the file."""


# OpenCV's log level is one per process: the save / silence / restore of quiet_ffmpeg must not
# interleave between the reading and the writing thread
_LOG_LEVEL_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_ffmpeg():
    """Silence FFmpeg's and OpenCV's stderr diagnostics while a file is opened (OpenCV reads
    OPENCV_FFMPEG_LOGLEVEL once, when FFmpeg is first used; -8 is AV_LOG_QUIET, which then
    also covers FFmpeg's per-frame complaints about damaged data)."""
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')
    with _LOG_LEVEL_LOCK:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            yield
        finally:
            cv2.utils.logging.setLogLevel(level)


class VideoReader:
    """An open video file. ``info`` is its VideoInfo; ``frames()`` decodes it as a stream.

    Raises VideoError when the file cannot be opened as a video. Use as a context manager (or
    call close()).
    """

    def __init__(self, path):
        self.path = path
        if os.path.isdir(path):
            raise VideoError('%s: is a folder, not a video file' % path)
        if not os.path.exists(path):
            raise VideoError('%s: no such file' % path)
        with quiet_ffmpeg():
            self._cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise VideoError("%s: not an image or a video that OpenCV's FFmpeg can decode"
                             % path)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.info = VideoInfo(
            float(fps) if np.isfinite(fps) and fps > 0 else DEFAULT_FPS,
            int(count) if np.isfinite(count) and count > 0 else 0,
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._cap.release()

    def _time_s(self, previous):
        """Presentation time of the frame just decoded: the stream's timestamp (right for
        variable frame rates), unless it is missing or does not move forward (OpenCV says 0
        for a frame without one; joined streams restart theirs), then previous + 1 / fps.
        previous: the time of the frame before (None for the first)."""
        msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(msec) and msec >= 0 and (previous is None or msec / 1000.0 > previous):
            return msec / 1000.0
        return 0.0 if previous is None else previous + 1.0 / self.info.fps

    def frames(self, every_n=1, max_frames=0):
        """Yield VideoFrame for frames 0, every_n, 2 every_n, ... (at most ``max_frames``; 0:
        all). Frames in between are only demuxed and decoded (grab), not converted.

        Raises VideoError when the file has no frame, or when it is cut or damaged (see
        stopped_early): the frames yielded until then stand.
        """
        if every_n < 1:
            raise ValueError('every_n must be at least 1, not %d' % every_n)
        yielded, index, time_s = 0, 0, None
        while not max_frames or yielded < max_frames:
            wanted = index % every_n == 0
            ok, bgr = self._cap.read() if wanted else (self._cap.grab(), None)
            if not ok:
                break
            time_s = self._time_s(time_s)
            if wanted:
                yield VideoFrame(index, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr))
                yielded += 1
            index += 1
        else:
            return  # stopped at max_frames
        if index == 0:
            raise VideoError('%s: the video has no frames' % self.path)
        if stopped_early(index, time_s, self.info):
            raise VideoError('%s: decoding stopped at frame %d of %d (the file is cut or '
                             'damaged)' % (self.path, index, self.info.frame_count))


def stopped_early(decoded, last_time_s, info):
    """Did decoding end before the clip does? ``decoded`` frames, the last at ``last_time_s``.

    Only when fewer than the stated count minus one were decoded AND the last one is before
    90 % of the stated duration (count / fps): containers without a frame count (MKV, WebM)
    make OpenCV estimate it from the duration at the nominal rate, which a variable frame
    rate throws off, so the count alone would call good files damaged.
    """
    if not info.frame_count or decoded >= info.frame_count - 1:
        return False
    return last_time_s < 0.9 * info.frame_count / info.fps


def _probe(codec):
    """Can this OpenCV build write ``codec`` into an .mp4?"""
    with tempfile.TemporaryDirectory() as folder, quiet_ffmpeg():
        writer = cv2.VideoWriter(os.path.join(folder, 'probe.mp4'),
                                 cv2.VideoWriter_fourcc(*FOURCC[codec]), 25.0, (64, 64))
        try:
            return writer.isOpened()
        finally:
            writer.release()


def best_codec():
    """H264 when OpenCV's FFmpeg has an H.264 encoder (not in the pip wheels, which are
    LGPL builds), else MPEG4 (every FFmpeg has it; common players play it)."""
    return H264 if _probe(H264) else MPEG4


def even_size(width, height):
    """(width, height) rounded up to even numbers: 4:2:0 video (what players expect) has
    chroma at half resolution, so encoders need even sides."""
    return width + width % 2, height + height % 2


class VideoWriter:
    """Write (H,W,3) uint8 RGB frames to an .mp4 at ``path`` with ``codec`` (H264 or MPEG4).

    Frames of odd width or height are padded by repeating their last column or row (see
    even_size); every frame must have the first frame's size. A context manager.
    """

    def __init__(self, path, fps, width, height, codec):
        self.path, self.size = path, (width, height)
        self._padded = even_size(width, height)
        with quiet_ffmpeg():
            self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC[codec]),
                                           float(fps), self._padded)
        if not self._writer.isOpened():  # the path is a temporary: the caller names the input
            raise VideoError('the %s encoder refuses a video of %dx%d' % (codec, width,
                                                                          height))

    def write(self, rgb):
        height, width = rgb.shape[:2]
        if (width, height) != self.size:
            raise VideoError('a frame of %dx%d in a %dx%d video' % (width, height, *self.size))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self._padded != self.size:
            bgr = cv2.copyMakeBorder(bgr, 0, self._padded[1] - height, 0,
                                     self._padded[0] - width, cv2.BORDER_REPLICATE)
        self._writer.write(bgr)

    def close(self):
        self._writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
