"""A clip's overlay video, video/NAME.mp4 (docs/formats.md §14): every track's mesh over each
kept frame, at the clip's size, written frame by frame (memory does not grow with the clip)."""
from util.io.video_io import DEFAULT_FPS, VideoWriter
from util.outputs.panel import overlay_image

# frame rates a clip's header can truly have; beyond them it is broken (a time base taken for
# a rate, say), and an overlay at that rate would not play
PLAUSIBLE_FPS = (0.01, 1000.0)


def overlay_rate(fps, every_n=1):
    """The overlay video's frame rate for a clip whose header says ``fps``, thinned to every
    ``every_n``-th frame -> (rate, problem): ``problem`` is None, or one line saying the
    header's rate cannot be right and that DEFAULT_FPS is used instead (the track keeps the
    frames' own times)."""
    if PLAUSIBLE_FPS[0] <= fps <= PLAUSIBLE_FPS[1]:
        return max(fps / every_n, PLAUSIBLE_FPS[0]), None
    return DEFAULT_FPS / every_n, (
        'its header gives a frame rate of %g frames per second, which cannot be right; the '
        'overlay video plays at %g' % (fps, DEFAULT_FPS / every_n))


class OverlayVideo:
    """path: the file to write (a staged one); fps: frames per second of the kept frames.
    The H.264 encoder (util.io.video_io.VideoWriter) opens at the first frame (its size)."""

    def __init__(self, path, fps, context):
        self.path, self.fps, self.context = path, fps, context
        self.writer = None

    def add(self, image, preds):
        """Frame ``image`` (H,W,3) uint8 RGB with the meshes of ``preds`` (Prediction, one per
        track found in it) over it."""
        if self.writer is None:
            height, width = image.shape[:2]
            self.writer = VideoWriter(self.path, self.fps, width, height)
        self.writer.write(overlay_image(image, preds, self.context))

    def close(self):
        """Finish the file (safe to call again)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
