"""The outputs of one video clip, built frame by frame (docs/formats.md §14).

Per clip NAME: the overlay video video/NAME.mp4 (every track's mesh over each frame); per
track (NAME, or NAME_face<k>): the track params/NAME.npz (one row per kept frame, NaN where
the face was not found), its JSON twin, one mesh per found frame mesh/NAME/<frame:06d>.obj and
the neutral template of the median shape. Big outputs (the video, the meshes) are written to
the staging folder as they come, so memory does not grow with the clip; everything is renamed
into place together at the end (util.io.atomic.Staging), or not at all.
"""
import io
import json
import threading

import numpy as np

from util.camera import render_camera
from util.head_pose import head_pose_deg
from util.io.video_io import VideoWriter
from util.pipeline.frames import Prediction
from util.pipeline.outputs import clip_output_path
from util.smoothing import smooth_track
from util.theta import split_theta
from util.using_flame_parameters import flame_vertices

PARAMS = ('cam', 'pose', 'shape', 'expression')


def track_arrays(times, frames, rows, extra_keys=()):
    """Rows of one track -> its arrays.

    times (T,) seconds and frames (T,) numbers of the clip's kept frames; rows {row index:
    {key: array}} for the rows where the face was found -> {'frame', 'time_s', 'found' (T,)
    bool, and per key of the rows (T, ...) with NaN on the other rows}.
    """
    n = len(frames)
    out = {'frame': np.asarray(frames, dtype=np.int64),
           'time_s': np.asarray(times, dtype=np.float64),
           'found': np.zeros(n, dtype=bool)}
    out['found'][list(rows)] = True
    first = next(iter(rows.values()))
    for key in list(PARAMS) + [k for k in extra_keys if k in first]:
        value = np.asarray(first[key])
        column = np.full((n,) + value.shape, np.nan, dtype=value.dtype if value.dtype.kind == 'f'
                         else np.float64)
        for row, data in rows.items():
            column[row] = data[key]
        out[key] = column
    return out


def npz_bytes(arrays):
    """{name: array} -> the bytes np.savez writes (no pickled objects: np.load reads it with
    allow_pickle=False)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _json_rows(column, found):
    """(T, ...) float array -> per row a nested list of floats, or None where not found."""
    return [np.asarray(value, dtype=np.float64).tolist() if ok else None
            for value, ok in zip(column, found)]


def track_json(arrays, meta):
    """A track's arrays -> its JSON twin: ``meta`` (source, fps, size, smoothing) then each
    array as a list over frames (a frame without a result is null), plus head_pose_deg
    (T,3) yaw, pitch, roll (docs/formats.md §12)."""
    found = arrays['found']
    record = dict(meta)
    record['frame'] = arrays['frame'].tolist()
    record['time_s'] = arrays['time_s'].tolist()
    record['found'] = found.tolist()
    for key, column in arrays.items():
        if key not in record and key != 'fps':
            record[key] = _json_rows(column, found)
    pose = np.nan_to_num(np.asarray(arrays['pose'], dtype=np.float64)[:, :3])
    record['head_pose_deg'] = _json_rows(head_pose_deg(pose) + 0.0, found)
    lines = ['  %s: %s' % (json.dumps(key), json.dumps(value)) for key, value in record.items()]
    return ('{\n' + ',\n'.join(lines) + '\n}\n').encode('ascii')


def smoothed_predictions(arrays, row, proc_params, image, theta_keys=PARAMS):
    """Row ``row`` of a smoothed track -> the Prediction it stands for (vertices are filled
    in by the caller), or None where the face was not found."""
    if not arrays['found'][row]:
        return None
    theta = np.concatenate([np.asarray(arrays[k][row], dtype=np.float32) for k in theta_keys])
    return Prediction(image, proc_params[row], None, theta)


class ClipRecorder:
    """Collects one clip's outputs. ``add`` and ``finish`` run on the pipeline's worker
    thread, in frame order.

    pipeline: the util.pipeline.Pipeline (its config, FLAME model, per-frame steps);
    clip: util.pipeline.frames.Clip; staging: the run's util.io.atomic.Staging; codec:
    util.io.video_io.H264 or MPEG4. With --smooth the track is smoothed when the clip ends,
    and the meshes and the overlay video are then made from it in a second pass over the
    frames (FLAME evaluated on the smoothed parameters), so every output shows the same track.
    """

    def __init__(self, pipeline, clip, staging, codec, source):
        self.pipeline, self.clip, self.staging = pipeline, clip, staging
        self.codec, self.source = codec, source
        self.frames, self.times = [], []
        self.tracks = {}  # track NAME -> {row: {key: array}}
        self.proc_params = {}  # track NAME -> {row: proc_param} (for the second pass)
        self.files = {}  # relative output path -> staged file
        self.video = None
        self.closed = False
        # abort() may come from the reading thread while the worker writes a frame
        self._lock = threading.Lock()

    def add(self, picture, preds):
        """One kept frame: its track rows, and (unless smoothing) its meshes and overlay."""
        with self._lock:
            if not self.closed:
                self._add(picture, preds)

    def _add(self, picture, preds):
        row = len(self.frames)
        self.frames.append(picture.index)
        self.times.append(picture.time_s)
        for frame, pred in zip(picture.frames, preds):
            self.tracks.setdefault(frame.name, {})[row] = self.pipeline.track_row(frame, pred)
            self.proc_params.setdefault(frame.name, {})[row] = pred.proc_param
        if not self.pipeline.config.smooth:
            self._write_frame(picture.index, picture.image,
                              [(frame.name, pred) for frame, pred in zip(picture.frames, preds)])

    def _write_frame(self, index, image, named_preds):
        """Frame number ``index`` of the overlay video, and each track's mesh of it.
        named_preds: [(track NAME, Prediction)] of the tracks found in it."""
        pipeline = self.pipeline
        if pipeline.config.save_obj_file:
            for name, pred in named_preds:
                staged = self.staging.new_file('.obj')
                with open(staged, 'wb') as fh:
                    fh.write(pipeline.obj_mesh.obj_text(pred.vertices).encode())
                self.files[clip_output_path(name, 'frame_mesh', index)] = staged
        if self.video is None:
            height, width = image.shape[:2]
            staged = self.staging.new_file('.mp4')
            # thinned clips keep their timeline: every N-th frame at fps / N
            fps = self.clip.info.fps / self.pipeline.config.every_n_frames
            self.video = VideoWriter(staged, fps, width, height, self.codec)
            self.files[clip_output_path(self.clip.name, 'video')] = staged
        self.video.write(pipeline.overlay(image, [pred for _, pred in named_preds]))

    def _second_pass(self, tracks):
        """--smooth: the meshes and overlay video of the smoothed ``tracks`` {NAME: arrays},
        over the clip's frames decoded again; the landmarks are recomputed from them."""
        pipeline, config = self.pipeline, self.pipeline.config
        rows = iter(range(len(self.frames)))
        for row, video_frame in zip(rows, self.clip.reread()):
            named_preds = []
            for name, arrays in tracks.items():
                pred = smoothed_predictions(arrays, row, self.proc_params[name],
                                            video_frame.image)
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
            self._write_frame(self.frames[row], video_frame.image, named_preds)
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

    def _finish(self):
        config = self.pipeline.config
        if not self.frames or not self.tracks:
            return []
        smoothing = None
        if config.smooth:
            smoothing = {'filter': 'one-euro', 'min_cutoff': config.smooth_min_cutoff,
                         'beta': config.smooth_beta, 'd_cutoff': config.smooth_d_cutoff}
        tracks = {}
        for name, rows in sorted(self.tracks.items()):
            arrays = track_arrays(self.times, self.frames, rows,
                                  ('box', 'landmarks_2d', 'landmarks_3d'))
            if smoothing:
                arrays = smooth_track(arrays, config.smooth_min_cutoff, config.smooth_beta,
                                      config.smooth_d_cutoff)
            tracks[name] = arrays
        if smoothing:
            self._second_pass(tracks)
        self.video.close()  # the file is complete before it is renamed into place
        meta = {'source': self.source, 'fps': self.clip.info.fps,
                'width': self.clip.info.width, 'height': self.clip.info.height,
                'smoothing': smoothing}
        contents = {}
        for name, arrays in tracks.items():
            arrays['fps'] = np.float64(self.clip.info.fps)
            contents[clip_output_path(name, 'track')] = npz_bytes(arrays)
            if config.save_flame_parameters:
                contents[clip_output_path(name, 'track_json')] = track_json(arrays, meta)
            if config.neutralize_expression:
                shape = np.median(arrays['shape'][arrays['found']], axis=0)
                contents[clip_output_path(name, 'neutral')] = self.pipeline.neutral_obj(shape)
        self.staging.commit(contents, self.files)
        return list(contents) + list(self.files)
