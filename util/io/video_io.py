"""Video files: frames in as a stream through OpenCV's FFmpeg, the overlay video out as H.264
through PyAV (pip's OpenCV has no H.264 encoder; PyAV's wheels ship libx264).

Only one decoded frame is held at a time, so memory does not grow with the clip. FFmpeg's and
OpenCV's own diagnostics are silenced (PyAV keeps FFmpeg's log off by default): a damaged
stream would print one line per frame over the progress bar, and the caller reports the
problem in one line of its own (a reader's VideoError names the file; a writer's, whose path
is a temporary, does not).
"""
import collections
import contextlib
import fractions
import os
import threading

import av
import av.video.reformatter
import cv2
import numpy as np

H264 = 'H.264'  # the overlay videos' codec, as the summary names it
CRF, PRESET = 18, 'fast'  # libx264: visually lossless for these panels, ~real time at 1080p
COLORSPACE, COLOR_RANGE = av.video.reformatter.Colorspace.ITU601, \
    av.video.reformatter.ColorRange.MPEG  # BT.601, limited (16-235) range
MAX_RATE_DENOMINATOR = 1001000  # fps as a fraction: 30000/1001 stays exact
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

    Raises VideoError when the file cannot be opened as a video, or when its frames (the size
    the container states; opening decodes none) have more than ``max_pixels`` pixels (None:
    no limit). Use as a context manager (or call close()).
    """

    def __init__(self, path, max_pixels=None):
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
        pixels = self.info.width * self.info.height
        if max_pixels is not None and pixels > max_pixels:
            self.close()
            raise VideoError('%s: %dx%d video frames have %d pixels, over the limit of %d '
                             '(--max_pixels)' % (path, self.info.width, self.info.height,
                                                 pixels, max_pixels))

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


def even_size(width, height):
    """(width, height) rounded up to even numbers: 4:2:0 video (what players expect) has
    chroma at half resolution, so encoders need even sides."""
    return width + width % 2, height + height % 2


class VideoWriter:
    """Write (H,W,3) uint8 RGB frames to an H.264 .mp4 at ``path`` (PyAV's libx264), at a
    constant ``fps``, that browsers play: yuv420p (4:2:0, the profile every decoder has), BT.601
    limited range, tagged as such, and the index (moov atom) at the front of the file
    (+faststart), so playback starts before the whole file has arrived.

    Frames of odd width or height are padded by repeating their last column or row (see
    even_size); every frame must have the first frame's size. The file is complete only after
    close() (the encoder's delayed frames, then the index). A context manager.
    """

    def __init__(self, path, fps, width, height):
        self.path, self.size = path, (width, height)
        self._padded = even_size(width, height)
        rate = fractions.Fraction(fps).limit_denominator(MAX_RATE_DENOMINATOR)
        try:
            self._container = av.open(path, 'w', format='mp4',
                                      options={'movflags': '+faststart'})
        except (av.FFmpegError, OSError) as e:  # the path is a temporary: the caller names it
            raise VideoError('the overlay video cannot be created: %s' % e) from None
        try:
            self._stream = self._container.add_stream('libx264', rate=rate)
            context = self._stream.codec_context
            context.width, context.height = self._padded
            context.pix_fmt = 'yuv420p'
            context.time_base = 1 / rate
            # tagged as converted: players that read the tags and those that assume BT.601
            # for SD both show the right colours
            context.colorspace, context.color_range = COLORSPACE, COLOR_RANGE
            context.options = {'crf': str(CRF), 'preset': PRESET}
        except (av.FFmpegError, ValueError) as e:
            self._container.close()
            raise VideoError('the H.264 encoder refuses a video of %dx%d at %s fps: %s'
                             % (width, height, fps, e)) from None
        self._pts = 0

    def write(self, rgb):
        height, width = rgb.shape[:2]
        if (width, height) != self.size:
            raise VideoError('a frame of %dx%d in a %dx%d video' % (width, height, *self.size))
        if self._padded != self.size:
            rgb = np.pad(rgb, ((0, self._padded[1] - height), (0, self._padded[0] - width),
                               (0, 0)), mode='edge')
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
        frame = frame.reformat(format='yuv420p', dst_colorspace=COLORSPACE,
                               dst_color_range=COLOR_RANGE)
        frame.pts = self._pts
        self._pts += 1
        self._mux(frame)

    def _mux(self, frame):
        """Encode ``frame`` (None: flush the encoder) and write its packets."""
        try:
            self._container.mux(self._stream.encode(frame))
        except av.FFmpegError as e:
            raise VideoError('the H.264 encoder failed: %s' % e) from None

    def close(self):
        """Flush the encoder and write the index; a second call does nothing."""
        if self._container is None:
            return
        try:
            if self._pts:
                self._mux(None)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
