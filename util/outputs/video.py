"""A clip's overlay video, video/NAME.mp4 (docs/formats.md §14): every track's mesh over each
kept frame, at the clip's size, written frame by frame (memory does not grow with the clip)."""
from util.io.video_io import VideoWriter
from util.outputs.panel import overlay_image


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
