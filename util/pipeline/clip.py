"""The outputs of one video clip, built frame by frame (docs/formats.md §14).

Per clip NAME: the overlay video video/NAME.mp4 (every track's mesh over each frame); per
track (NAME, or NAME_face<k>): the track params/NAME.npz (one row per kept frame, NaN where
the face was not found), its JSON twin, one mesh per found frame mesh/NAME/<frame:06d>.obj and
the neutral template of the median shape. Big outputs (the video, the meshes) are written to
the staging folder as they come, so memory does not grow with the clip; everything is renamed
into place together at the end (util.io.atomic.Staging), or not at all.
"""
import json
import threading

import numpy as np

from util.camera import crop_weak_perspective, image_weak_perspective, render_camera
from util.head_pose import head_pose_deg
from util.io.columns import RowFile, write_npz
from util.io.video_io import VideoWriter
from util.pipeline.frames import Prediction
from util.pipeline.outputs import clip_output_path
from util.smoothing import median_rows, smooth_track
from util.theta import split_theta
from util.using_flame_parameters import flame_vertices

PARAMS = ('cam', 'pose', 'shape', 'expression')
JSON_CHUNK = 1024  # rows formatted at a time: the JSON is streamed, never built whole


class TrackColumns:
    """One track's rows on disk (util.io.columns.RowFile): ``found`` (bool) and one file per
    key of its first row, every row of the clip present (NaN where the face was not found).

    new_file: () -> a fresh staged path; first_row: {key: array}; rows_before: rows of the
    clip before the track started (written as not found).
    """

    def __init__(self, new_file, first_row, rows_before):
        self.found = RowFile(new_file('.raw'), (), bool)
        self.found.fill(rows_before, False)
        self.columns = {}
        for key, value in first_row.items():
            value = np.asarray(value)
            column = RowFile(new_file('.raw'), value.shape,
                             value.dtype if value.dtype.kind == 'f' else np.float64)
            column.fill(rows_before, np.nan)
            self.columns[key] = column

    def append(self, row):
        """The next frame's row: {key: array}, or None where the face was not found."""
        self.found.append(row is not None)
        for key, column in self.columns.items():
            if row is None:
                column.fill(1, np.nan)
            else:
                column.append(row[key])


def _json_values(column, found=None):
    """JSON text of each row of (T, ...) ``column`` (null where ``found`` is False)."""
    for start in range(0, len(column), JSON_CHUNK):
        rows = np.asarray(column[start:start + JSON_CHUNK])
        ok = None if found is None else np.asarray(found[start:start + JSON_CHUNK])
        for k, value in enumerate(rows.tolist()):
            yield 'null' if ok is not None and not ok[k] else json.dumps(value)


def _head_pose_rows(pose):
    """(T,6) pose, read in chunks -> (T,3) yaw, pitch, roll in degrees, chunk by chunk."""
    for start in range(0, len(pose), JSON_CHUNK):
        chunk = np.nan_to_num(np.asarray(pose[start:start + JSON_CHUNK], dtype=np.float64))
        yield from (head_pose_deg(chunk[:, :3]) + 0.0)  # + 0.0: no -0.0


def write_track_json(path, arrays, meta):
    """Write a track's JSON twin to ``path`` as a stream: ``meta`` (source, fps, size,
    smoothing), then each array of ``arrays`` (frame, time_s, found, the parameters, ...) as
    a list over frames (a row is null where the face was not found), then head_pose_deg
    (rows of yaw, pitch, roll, docs/formats.md §12). One key per line."""
    found = arrays['found']
    with open(path, 'w', encoding='ascii') as fh:
        fh.write('{\n' + ''.join('  %s: %s,\n' % (json.dumps(k), json.dumps(v))
                                 for k, v in meta.items()))
        columns = [(key, value, None if key in ('frame', 'time_s', 'found') else found)
                   for key, value in arrays.items() if key != 'fps']
        columns.append(('head_pose_deg', np.array(list(_head_pose_rows(arrays['pose'])))
                        if len(found) else np.zeros((0, 3)), found))
        for n, (key, column, mask) in enumerate(columns):
            fh.write('  %s: [' % json.dumps(key))
            for k, text in enumerate(_json_values(column, mask)):
                fh.write((', ' if k else '') + text)
            fh.write(']%s\n' % (',' if n < len(columns) - 1 else ''))
        fh.write('}\n')


def smoothed_prediction(arrays, row, image, img_size):
    """Row ``row`` of a (smoothed) track -> the Prediction it stands for (theta from its
    parameters, the crop from its crop_* columns; vertices None, for the caller to fill), or
    None where the face was not found."""
    if not arrays['found'][row]:
        return None
    theta = np.concatenate([np.asarray(arrays[k][row], dtype=np.float32) for k in PARAMS])
    proc_param = {'scale': float(arrays['crop_scale'][row]), 'img_size': img_size,
                  'start_pt': np.asarray(arrays['crop_offset'][row]) + img_size / 2.0}
    return Prediction(image, proc_param, None, theta)


class ClipRecorder:
    """Collects one clip's outputs. ``add`` and ``finish`` run on the pipeline's worker
    thread, in frame order; the rows go to files in the staging folder as they come.

    pipeline: the util.pipeline.Pipeline (its config, FLAME model, per-frame steps);
    clip: util.pipeline.frames.Clip; staging: the run's util.io.atomic.Staging; codec:
    util.io.video_io.H264 or MPEG4. With --smooth the track is smoothed when the clip ends,
    and the meshes and the overlay video are then made from it in a second pass over the
    frames (FLAME evaluated on the smoothed parameters), so every output shows the same track.
    """

    def __init__(self, pipeline, clip, staging, codec, source):
        self.pipeline, self.clip, self.staging = pipeline, clip, staging
        self.codec, self.source = codec, source
        self.frames = RowFile(staging.new_file('.raw'), (), np.int64)
        self.times = RowFile(staging.new_file('.raw'), (), np.float64)
        self.tracks = {}  # track NAME -> TrackColumns
        self.files = {}  # relative output path -> staged file
        self.video = None
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
        found = {}
        for frame, pred in zip(picture.frames, preds):
            row = self.pipeline.track_row(frame, pred)
            row['crop_scale'] = pred.proc_param['scale']
            row['crop_offset'] = (np.asarray(pred.proc_param['start_pt'], dtype=np.float64)
                                  - self.pipeline.config.img_size / 2.0)
            found[frame.name] = row
        if not self.pipeline.config.smooth:  # first: a frame that fails leaves no row
            self._write_frame(picture.index, picture.image,
                              [(frame.name, pred) for frame, pred in zip(picture.frames, preds)])
        for name, row in found.items():
            if name not in self.tracks:
                self.tracks[name] = TrackColumns(self.staging.new_file, row, self.frames.rows)
        for name, track in self.tracks.items():
            track.append(found.get(name))
        self.frames.append(picture.index)
        self.times.append(picture.time_s)

    def _write_frame(self, index, image, named_preds):
        """Frame number ``index`` of the overlay video, and each track's mesh of it.
        named_preds: [(track NAME, Prediction)] of the tracks found in it."""
        pipeline = self.pipeline
        meshes = {}  # listed for the commit only once the frame is in the video too
        if pipeline.config.save_obj_file:
            for name, pred in named_preds:
                staged = self.staging.new_file('.obj')
                with open(staged, 'wb') as fh:
                    fh.write(pipeline.obj_mesh.obj_text(pred.vertices).encode())
                meshes[clip_output_path(name, 'frame_mesh', index)] = staged
        if self.video is None:
            height, width = image.shape[:2]
            staged = self.staging.new_file('.mp4')
            # thinned clips keep their timeline: every N-th frame at fps / N
            fps = self.clip.info.fps / self.pipeline.config.every_n_frames
            self.video = VideoWriter(staged, fps, width, height, self.codec)
            self.files[clip_output_path(self.clip.name, 'video')] = staged
        self.video.write(pipeline.overlay(image, [pred for _, pred in named_preds]))
        self.files.update(meshes)

    def _second_pass(self, tracks, frames):
        """--smooth: the meshes and overlay video of the smoothed ``tracks`` {NAME: arrays},
        over the clip's frames decoded again; the landmarks are recomputed from them (in
        place). frames: (T,) the frame numbers."""
        pipeline, config = self.pipeline, self.pipeline.config
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
                parts = split_theta(pred.theta, config.pose_params, config.shape_params,
                                    config.expression_params)
                vertices = flame_vertices(pipeline.flame, parts['pose'], parts['shape'],
                                          parts['expression'])[0].astype(np.float32)
                pred = pred._replace(vertices=vertices)
                named_preds.append((name, pred))
                if config.save_landmarks:
                    cam = render_camera(pred.theta[:3], pred.proc_param, config.img_size)
                    arrays['landmarks_2d'][row], arrays['landmarks_3d'][row] = \
                        pipeline.landmark_points(pred, cam)
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
        """Write every output of the clip together -> relative paths written ([] when no
        frame was kept, no face was ever found, or abort() came first)."""
        with self._lock:
            if self.closed:
                return []
            try:
                return self._finish()
            finally:
                self._close()

    def _smoothing(self):
        """The --smooth record of the JSON (None without --smooth)."""
        config = self.pipeline.config
        if not config.smooth:
            return None
        return {'filter': 'one-euro', 'min_cutoff': config.smooth_min_cutoff,
                'beta': config.smooth_beta, 'd_cutoff': config.smooth_d_cutoff}

    def _smoothed(self, arrays):
        """--smooth of a track's arrays. The camera is smoothed in input pixels: each frame's
        crop follows its own face box, so its crop-relative cam jumps with the detector;
        (scale, position) in the input image do not."""
        config = self.pipeline.config
        crop = (arrays['crop_scale'], arrays['crop_offset'], config.img_size)
        arrays = dict(arrays, cam=image_weak_perspective(arrays['cam'], *crop))
        arrays = smooth_track(arrays, config.smooth_min_cutoff, config.smooth_beta,
                              config.smooth_d_cutoff)
        arrays['cam'] = crop_weak_perspective(arrays['cam'], *crop).astype(np.float32)
        return arrays

    def _finish(self):
        config = self.pipeline.config
        if not self.frames.rows or not self.tracks:
            return []
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
                contents[clip_output_path(name, 'neutral')] = self.pipeline.neutral_obj(
                    median_rows(arrays['shape'], arrays['found']))
        self.staging.commit(contents, self.files)
        return list(contents) + list(self.files)

    def _stage(self, rel, suffix, write, *args):
        """Write output ``rel`` to a staged file with ``write(path, *args)``."""
        staged = self.staging.new_file(suffix)
        write(staged, *args)
        self.files[rel] = staged
