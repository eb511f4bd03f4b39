"""The outputs of one video clip, built frame by frame (docs/formats.md §14).

Per clip NAME: the overlay video video/NAME.mp4 (every track's mesh over each frame); per
track (NAME, or NAME_face<k>): the track params/NAME.npz (one row per kept frame, NaN where
the face was not found), its JSON twin, one mesh per found frame mesh/NAME/<frame:06d>.obj,
the neutral template of the median shape and the animated GLB glb/NAME.glb. Big outputs (the
video, the meshes) are written to the staging folder as they come, so memory does not grow
with the clip; everything is renamed into place together at the end (util.io.atomic.Staging),
or not at all.
"""
import threading

import numpy as np

from smpl_webuser.flame_params import flame_vertices
from util.face.camera import crop_weak_perspective, image_weak_perspective
from util.face.smoothing import median_rows, smooth_track
from util.io.columns import RowFile, write_npz
from util.outputs.context import camera
from util.outputs.glb import track_glb_outputs
from util.outputs.landmarks import landmark_points
from util.outputs.mesh import mesh_bytes
from util.outputs.naming import clip_output_path
from util.outputs.neutral import neutral_obj
from util.outputs.track import TrackColumns, smoothed_prediction, track_row, write_track_json
from util.outputs.video import OverlayVideo, overlay_rate


class ClipRecorder:
    """Collects one clip's outputs. ``add`` and ``finish`` run on the pipeline's worker
    thread, in frame order; the rows go to files in the staging folder as they come.

    context: util.outputs.context.OutputContext; config: the flags (which outputs, thinning,
    smoothing); clip: util.face.frames.Clip; staging: the run's util.io.atomic.Staging. With
    --smooth the track is smoothed when the clip ends, and the meshes and the overlay video
    are then made from it in a second pass over the frames (FLAME evaluated on the smoothed
    parameters), so every output shows the same track.
    """

    def __init__(self, context, config, clip, staging, source):
        self.context, self.config, self.clip, self.staging = context, config, clip, staging
        self.source = source
        # thinned clips keep their timeline: every N-th frame at fps / N; a header's absurd
        # rate is replaced (rate_problem says so) and the clip goes on
        self.overlay_fps, self.rate_problem = overlay_rate(clip.info.fps, config.every_n_frames)
        self.frames = RowFile(staging.new_file('.raw'), (), np.int64)
        self.times = RowFile(staging.new_file('.raw'), (), np.float64)
        self.tracks = {}  # track NAME -> TrackColumns
        self.files = {}  # relative output path -> staged file
        self.video = None
        self.frames_with_face = 0  # kept frames where a face (a track) was found
        self.closed = False  # abort() or finish() came: nothing more is written
        self.stopped = False  # an add() failed: later frames are dropped, the rest is kept
        # abort() may come from the reading thread while the worker writes a frame
        self._lock = threading.Lock()

    def add(self, picture, preds):
        """One kept frame: its track rows, and (unless smoothing) its meshes and overlay ->
        True, or False when the clip no longer takes frames. If it raises, the clip stops
        there (stopped): the frames before it are still written by finish()."""
        with self._lock:
            if self.closed or self.stopped:
                return False
            try:
                self._add(picture, preds)
            except BaseException:
                self.stopped = True
                raise
            return True

    def _add(self, picture, preds):
        found = {frame.name: track_row(frame, pred, self.context)
                 for frame, pred in zip(picture.frames, preds)}
        if not self.config.smooth:  # first: a frame that fails leaves no row
            self._write_frame(picture.index, picture.image,
                              [(frame.name, pred) for frame, pred in zip(picture.frames, preds)])
        for name, row in found.items():
            if name not in self.tracks:
                self.tracks[name] = TrackColumns(self.staging.new_file, row, self.frames.rows)
        for name, track in self.tracks.items():
            track.append(found.get(name))
        self.frames.append(picture.index)
        self.times.append(picture.time_s)
        self.frames_with_face += bool(found)

    def _write_frame(self, index, image, named_preds):
        """Frame number ``index`` of the overlay video, and each track's mesh of it.
        named_preds: [(track NAME, Prediction)] of the tracks found in it."""
        meshes = {}  # listed for the commit only once the frame is in the video too
        if self.config.save_obj_file:
            for name, pred in named_preds:
                staged = self.staging.new_file('.obj')
                with open(staged, 'wb') as fh:
                    fh.write(mesh_bytes(pred, self.context))
                meshes[clip_output_path(name, 'frame_mesh', index)] = staged
        if self.video is None:
            staged = self.staging.new_file('.mp4')
            self.video = OverlayVideo(staged, self.overlay_fps, self.context)
            self.files[clip_output_path(self.clip.name, 'video')] = staged
        self.video.add(image, [pred for _, pred in named_preds])
        self.files.update(meshes)

    def _second_pass(self, tracks, frames):
        """--smooth: the meshes and overlay video of the smoothed ``tracks`` {NAME: arrays},
        over the clip's frames decoded again; the landmarks are recomputed from them (in
        place). frames: (T,) the frame numbers."""
        config, context = self.config, self.context
        rows = iter(range(len(frames)))
        for row, video_frame in zip(rows, self.clip.reread()):
            if video_frame.index != frames[row]:
                raise ValueError('the second pass (--smooth) read frame %d where the first read '
                                 '%d' % (video_frame.index, frames[row]))
            named_preds = []
            for name, arrays in tracks.items():
                pred = smoothed_prediction(arrays, row, video_frame.image, config.img_size)
                if pred is None:
                    continue
                parts = context.layout.split(pred.theta)
                vertices = flame_vertices(context.flame, parts['pose'], parts['shape'],
                                          parts['expression'])[0].astype(np.float32)
                pred = pred._replace(vertices=vertices)
                named_preds.append((name, pred))
                if config.save_landmarks:
                    arrays['landmarks_2d'][row], arrays['landmarks_3d'][row] = \
                        landmark_points(pred, camera(pred, context), context)
            self._write_frame(int(frames[row]), video_frame.image, named_preds)
        if next(rows, None) is not None:
            raise ValueError('the second pass (--smooth) read fewer frames than the first')

    def abort(self):
        """Stop without writing anything (the staged files go with the staging folder); any
        later add() or finish() does nothing. Safe from any thread."""
        with self._lock:
            self._close()

    def _close(self):
        self.closed = True
        if self.video is not None:
            self.video.close()
            self.video = None

    def finish(self):
        """Write every output of the clip together -> {relative path: size} written ({} when
        no frame was kept, no face was ever found, or abort() came first)."""
        with self._lock:
            if self.closed:
                return {}
            try:
                return self._finish()
            finally:
                self._close()

    def _smoothing(self):
        """The --smooth record of the JSON (None without --smooth)."""
        config = self.config
        if not config.smooth:
            return None
        return {'filter': 'one-euro', 'min_cutoff': config.smooth_min_cutoff,
                'beta': config.smooth_beta, 'd_cutoff': config.smooth_d_cutoff}

    def _smoothed(self, arrays):
        """--smooth of a track's arrays. The camera is smoothed in input pixels: each frame's
        crop follows its own face box, so its crop-relative cam jumps with the detector;
        (scale, position) in the input image do not."""
        config = self.config
        crop = (arrays['crop_scale'], arrays['crop_offset'], config.img_size)
        arrays = dict(arrays, cam=image_weak_perspective(arrays['cam'], *crop))
        arrays = smooth_track(arrays, config.smooth_min_cutoff, config.smooth_beta,
                              config.smooth_d_cutoff)
        arrays['cam'] = crop_weak_perspective(arrays['cam'], *crop).astype(np.float32)
        return arrays

    def _finish(self):
        config = self.config
        if not self.frames.rows or not self.tracks:
            return {}
        smoothing = self._smoothing()
        tracks = {}
        for name, track in sorted(self.tracks.items()):
            # memory-mapped: the rows stay on disk (landmarks writable for the second pass)
            arrays = {'frame': self.frames.array(), 'time_s': self.times.array(),
                      'found': track.found.array()}
            arrays.update((key, column.array('r+')) for key, column in track.columns.items())
            if smoothing:  # holds the parameters in memory (about 1 KB per frame)
                arrays = self._smoothed(arrays)
            tracks[name] = arrays
        if smoothing:
            self._second_pass(tracks, self.frames.array())
        self._close()  # the video file is complete before it is renamed into place
        meta = {'source': self.source, 'fps': self.clip.info.fps,
                'width': self.clip.info.width, 'height': self.clip.info.height,
                'smoothing': smoothing}
        contents = {}
        for name, arrays in tracks.items():
            arrays = dict(arrays)
            arrays['fps'] = np.float64(self.clip.info.fps)
            self._stage(clip_output_path(name, 'track'), '.npz', write_npz, arrays)
            if config.save_flame_parameters:
                self._stage(clip_output_path(name, 'track_json'), '.json', write_track_json,
                            arrays, meta)
            if config.neutralize_expression:
                contents[clip_output_path(name, 'neutral')] = neutral_obj(
                    median_rows(arrays['shape'], arrays['found']), self.context)
            if config.save_glb:
                contents.update(track_glb_outputs(name, arrays, self.context))
        return self.staging.commit(contents, self.files)

    def _stage(self, rel, suffix, write, *args):
        """Write output ``rel`` to a staged file with ``write(path, *args)``."""
        staged = self.staging.new_file(suffix)
        write(staged, *args)
        self.files[rel] = staged
