"""Pictures -> RingNet prediction for each frame -> every requested output.

The backend (the network) is handed in and the FLAME files are loaded once per ``Pipeline``;
pictures (util.pipeline.frames) then stream through. A picture's outputs (its panel and each
frame's files) are all computed in memory first, then written to temporary files that are
renamed into place only once every one of them is written: a failing picture leaves none of
its outputs (and no partial file) behind, and never stops the rest of the batch.
"""
import collections
import concurrent.futures
import functools
import io
import os
import sys
import time

import numpy as np

from smpl_webuser.serialization import load_model
from util.camera import project, render_camera, to_camera
from util.io.atomic import Staging, recover_staging
from util.io.image_io import encode_image
from util.io.mesh_io import ObjTopology, load_mesh, mtl_name, mtl_text, vertex_text
from util.io.video_io import best_codec
from util.landmarks import (landmarks_68, load_dynamic_embedding, load_static_embedding,
                            yaw_from_pose)
from util.pipeline.clip import ClipRecorder
from util.pipeline.frames import Clip, Prediction
from util.pipeline.outputs import clip_settings, frame_kinds, output_path, wants_landmarks
from util.pipeline.sidecar import json_bytes, params_record
from util.pipeline.sources import clash_error
from util.preprocess import preprocess_image
from util.project_on_mesh import compute_texture_map
from util.renderer import MAX_PANEL_SIDE, fit_to_side, four_panel, overlay_panel
from util.texture_data import load_texture_data
from util.theta import split_theta
from util.using_flame_parameters import neutral_vertices

RunResult = collections.namedtuple('RunResult', 'done failed interrupted partial',
                                   defaults=(0,))
RunResult.__doc__ = """done / failed: items (inputs) whose outputs were all written / that
failed or were cut short (reported); interrupted: the run stopped early on KeyboardInterrupt
(SIGINT, or SIGTERM turned into one by the command line), after finishing the picture being
written; partial: of the failed, the videos cut short whose frames were written."""


def npy_bytes(value):
    """The bytes ``np.save`` writes for ``value`` (a dict is saved as a 0-d object array)."""
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def check_backend(config, backend, load_path):
    """Raise ValueError (naming ``load_path``) unless the backend fits the theta layout and
    ``--img_size`` of ``config``."""
    n_theta = 3 + config.pose_params + config.shape_params + config.expression_params
    if n_theta != backend.n_theta:
        raise ValueError('%s: the network predicts %d parameters, but 3 + --pose_params + '
                         '--shape_params + --expression_params = %d'
                         % (load_path, backend.n_theta, n_theta))
    if backend.image_size not in (None, config.img_size):
        raise ValueError('%s: the network takes %dx%d images, but --img_size is %d'
                         % (load_path, backend.image_size, backend.image_size, config.img_size))


class Pipeline:
    """RingNet on a stream of frames.

    config: the flags (config.py); files: {key: path} of
    util.pipeline.model_files.resolve_model_files (the embeddings only with landmarks);
    backend: the network (util.pipeline.backends), already loaded.
    """

    def __init__(self, config, files, backend):
        check_backend(config, backend, files['load_path'])
        self.config = config
        self.backend = backend
        self.flame = load_model(files['flame_model_path'])
        if backend.n_vertices != len(self.flame.v_template):
            raise ValueError('%s: the FLAME model has %d vertices, the network predicts %d'
                             % (files['flame_model_path'], len(self.flame.v_template),
                                backend.n_vertices))
        self.faces = self.flame.f
        if config.template_mesh:
            self.faces = self._template_faces(config.template_mesh)
        # the texture's UV faces (ft) pair row by row with FLAME's own faces, whatever
        # --template_mesh says
        self.texture_data = (load_texture_data(files['flame_texture_data_path'],
                                               len(self.flame.v_template), len(self.flame.f))
                             if config.save_texture else None)
        # faces / UVs are the same for every frame: format their OBJ text once
        self.obj_mesh = ObjTopology(self.faces)
        self.obj_neutral = ObjTopology(self.flame.f)
        self.obj_textured = (ObjTopology(self.flame.f, self.texture_data['vt'],
                                         self.texture_data['ft'])
                             if config.save_texture else None)
        self.video_codec = None  # util.io.video_io.best_codec(), probed at the first clip
        self.videos_written = 0  # overlay videos committed (the summary names their codec)
        self.embeddings = ((load_static_embedding(files['flame_static_embedding_path']),
                            load_dynamic_embedding(files['flame_dynamic_embedding_path']))
                           if wants_landmarks(config) else None)

    def _template_faces(self, path):
        mesh = load_mesh(path)
        if len(mesh.v) != len(self.flame.v_template):
            raise ValueError('%s: template mesh has %d vertices, the FLAME model %d'
                             % (path, len(mesh.v), len(self.flame.v_template)))
        return mesh.f

    def predict(self, frame):
        """Crop and run one util.pipeline.frames.Frame -> Prediction."""
        crop, proc_param = preprocess_image(frame.image, self.config.img_size, frame.box)
        vertices, theta = self.backend.predict(crop[None], get_parameters=True)
        return Prediction(frame.image, proc_param, vertices[0], theta[0])

    def landmarks(self, pred):
        """(68,3) FLAME landmarks of a prediction, model coordinates (util.landmarks)."""
        pose = split_theta(pred.theta, self.config.pose_params, self.config.shape_params,
                           self.config.expression_params)['pose']
        return landmarks_68(pred.vertices[None], self.flame.f, self.embeddings[0],
                            self.embeddings[1], yaw_from_pose(pose[None]))[0]

    def landmark_points(self, pred, cam):
        """(68,2) input pixels and (68,3) model coordinates of a prediction's landmarks."""
        points = self.landmarks(pred)
        return project(to_camera(points, cam), cam.f, cam.c), points

    def neutral_obj(self, shape):
        """(S,) shape -> the OBJ bytes of its neutral template (util.using_flame_parameters)."""
        return self.obj_neutral.obj_text(neutral_vertices(self.flame, shape)).encode()

    def track_row(self, frame, pred):
        """A video frame's row of its track: {'cam', 'pose', 'shape', 'expression' (float32),
        'box' (4,) face box (the whole frame without detection) and, with --save_landmarks,
        'landmarks_2d' (68,2) and 'landmarks_3d' (68,3)}."""
        cfg = self.config
        row = split_theta(pred.theta, cfg.pose_params, cfg.shape_params, cfg.expression_params)
        row = {key: value.copy() for key, value in row.items()}
        row['box'] = np.asarray(face_box(frame), dtype=np.float64)
        if cfg.save_landmarks:
            cam = render_camera(pred.theta[:3], pred.proc_param, cfg.img_size)
            row['landmarks_2d'], row['landmarks_3d'] = self.landmark_points(pred, cam)
        return row

    def cameras(self, preds):
        """[util.camera.RenderCamera] of each prediction, in its input image's pixels."""
        return [render_camera(p.theta[:3], p.proc_param, self.config.img_size) for p in preds]

    def dots(self, preds, cams):
        """The landmark dots to draw ([(68,2)] pixels, with --draw_landmarks; else [])."""
        return ([self.landmark_points(p, cam)[0] for p, cam in zip(preds, cams)]
                if self.config.draw_landmarks else [])

    def overlay(self, image, preds):
        """A video frame (H,W,3) with every found track's mesh over it (landmarks with
        --draw_landmarks), at the frame's size: four_panel's second panel."""
        cams = self.cameras(preds)
        return overlay_panel(image, [(p.vertices, cam) for p, cam in zip(preds, cams)],
                             self.faces, self.dots(preds, cams))

    def frame_outputs(self, frame, pred, source):
        """{relative path: bytes} of one frame's outputs except the panel."""
        cfg = self.config
        kinds = frame_kinds(cfg)
        name = frame.name
        out = {}
        cam = render_camera(pred.theta[:3], pred.proc_param, cfg.img_size)
        # the prediction's 'v' lines are formatted once, for every OBJ that holds them
        lines = (vertex_text(pred.vertices) if 'mesh' in kinds or 'texture_obj' in kinds
                 else None)
        if 'mesh' in kinds:
            out[output_path(name, 'mesh')] = self.obj_mesh.obj_text(
                pred.vertices, vertex_lines=lines).encode()
        params = {k: v.copy() for k, v in split_theta(
            pred.theta, cfg.pose_params, cfg.shape_params, cfg.expression_params).items()}
        if 'params' in kinds:
            out[output_path(name, 'params')] = npy_bytes(params)
            detection = frame.detection
            out[output_path(name, 'params_json')] = json_bytes(params_record(
                params, pred.proc_param, crop_box(frame), face_box(frame), source, frame.face,
                None if detection is None else detection.score))
        if 'neutral' in kinds:
            out[output_path(name, 'neutral')] = self.neutral_obj(params['shape'])
        if 'texture' in kinds:
            texture = compute_texture_map(pred.image, pred.vertices, cam, self.texture_data,
                                          self.flame.f)
            image, obj = output_path(name, 'texture'), output_path(name, 'texture_obj')
            out[image] = encode_image(texture)
            out[output_path(name, 'texture_mtl')] = mtl_text(os.path.basename(image)).encode()
            out[obj] = self.obj_textured.obj_text(pred.vertices, mtl_name(obj),
                                                  vertex_lines=lines).encode()
        if 'landmarks_3d' in kinds:
            points_2d, points = self.landmark_points(pred, cam)
            out[output_path(name, 'landmarks_2d')] = points_text(points_2d)
            out[output_path(name, 'landmarks_3d')] = points_text(points)
        return out

    def panel(self, picture, preds):
        """The picture's 4-panel image (every frame's mesh; landmarks with --draw_landmarks)."""
        # panels of huge photos are drawn smaller (the texture still samples the full image)
        image, cams = fit_to_side(picture.image, self.cameras(preds), MAX_PANEL_SIDE)
        return four_panel(image, [(p.vertices, cam) for p, cam in zip(preds, cams)],
                          self.faces, self.dots(preds, cams))

    def outputs(self, picture, preds, source=''):
        """{relative path: file content (bytes)} for every requested output of a picture whose
        frames predicted ``preds``: its panel, then each frame's outputs."""
        out = {output_path(picture.name, 'panel'): encode_image(self.panel(picture, preds))}
        for frame, pred in zip(picture.frames, preds):
            out.update(self.frame_outputs(frame, pred, source))
        return out

    def save(self, picture, preds, staging, source=''):
        """Compute and write every requested output of a picture -> relative paths written.

        All-or-nothing (util.io.atomic.Staging.commit): the outputs appear together or not
        at all, whatever fails.
        """
        contents = self.outputs(picture, preds, source)
        staging.commit(contents)
        return list(contents)

    def process(self, picture, out_folder, source=''):
        """All outputs of one picture, one step after the other -> relative paths written."""
        with Staging(out_folder) as staging:
            return self.save(picture, [self.predict(f) for f in picture.frames], staging,
                             source)

    def run(self, items, out_folder, err=sys.stderr, manifest=None, progress=None):
        """Process every picture of every item (util.pipeline.sources.Item) -> RunResult
        counting items (inputs): done (every output written) and failed.

        A failing item or picture is reported in one line on ``err`` and the batch goes on;
        a picture whose frames do not all predict writes nothing. A video clip's outputs are
        written together when it ends; one that breaks partway keeps the frames done (status
        'partial'). Outputs are rendered and written on a worker thread while the network runs
        on the next picture (the network releases the GIL); at most one picture waits for it,
        so memory stays flat. When an item finishes, its line is appended to ``manifest``
        (util.pipeline.manifest.Manifest); ``progress`` advances per photo and per video
        frame. On KeyboardInterrupt the picture being written is finished (or rolled back, if
        it fails), a clip being read is dropped, then the run stops. Leftovers of a killed
        earlier run into ``out_folder`` are cleaned up first.
        """
        recover_staging(out_folder)
        counts = collections.Counter()  # item statuses, counted on the worker thread only
        names = {}  # (kind, NAME) -> the source that claimed it ('a.jpg' and 'a.png' collide)
        interrupted = False
        with Staging(out_folder) as staging:
            jobs = None
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
                writing = None
                try:
                    for item in items:
                        record = ItemRecord(item.source)
                        jobs = self._jobs(item, names, record, err, staging, progress)
                        for job in jobs:
                            if writing is not None:
                                writing.result()
                            writing = worker.submit(job)
                        # queued after the item's writes: the worker runs jobs in order
                        worker.submit(self._finish, record, counts, manifest, progress)
                except KeyboardInterrupt:
                    interrupted = True
                # leaving the executor waits for the queued writes
            if jobs is not None:
                jobs.close()  # an interrupted clip drops its staged outputs
        return RunResult(counts['ok'], counts['failed'] + counts['partial'], interrupted,
                         counts['partial'])

    def _jobs(self, item, names, record, err, staging, progress):
        """Worker-thread jobs (no-argument callables) for ``item``: each picture's writes;
        failures are reported and noted in ``record``."""
        try:
            start = time.perf_counter()
            read = item.read()
            record.seconds += time.perf_counter() - start
            if isinstance(read, Clip):
                yield from self._clip_jobs(item, read, names, record, err, staging, progress)
                return
            for picture, preds in self._predicted(item.source, read, names, record, err):
                yield functools.partial(self._write, picture, preds, staging, record, err)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one bad item must not stop a batch
            record.fail(item.source, e, err)

    def _claim(self, names, key, source):
        """Register ``key`` = (kind, NAME) for ``source``; raise if another input has it.
        Kinds: 'panel' (images/NAME.png), 'video' (video/NAME.mp4), 'frame' (a photo frame's
        or a video track's mesh, params and neutral mesh: the same files)."""
        other = names.setdefault(key, source)
        if other != source:
            raise clash_error(other, key[1])

    def _predicted(self, source, pictures, names, record, err):
        """(picture, [Prediction]) for each picture that has free names and predicts;
        failures are reported and noted in ``record``."""
        start = time.perf_counter()
        for picture in pictures:
            self._claim(names, ('panel', picture.name), source)
            for frame in picture.frames:
                self._claim(names, ('frame', frame.name), source)
            try:
                preds = [self.predict(frame) for frame in picture.frames]
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - reported per picture, the item goes on
                record.fail(source, e, err)
                continue
            finally:
                record.seconds += time.perf_counter() - start
            yield picture, preds
            start = time.perf_counter()

    def _clip_jobs(self, item, clip, names, record, err, staging, progress):
        """Worker jobs of a video clip: one per frame (track rows, meshes, overlay frame),
        then its commit. A clip that breaks partway keeps its frames (record.partial)."""
        self._claim(names, ('video', clip.name), item.source)
        if self.video_codec is None:
            self.video_codec = best_codec()
        recorder = ClipRecorder(self, clip, staging, self.video_codec, item.source)
        record.frames = 0
        record.settings = clip_settings(self.config)
        if progress is not None:  # one unit per frame instead of one for the clip
            yield functools.partial(progress.expect, max(clip.expected, 1) - 1, 'frame')
        handed_over = False  # the commit job is the worker's: it runs, even if interrupted
        try:
            try:
                start = time.perf_counter()
                for picture in clip.pictures:
                    if recorder.stopped:  # writing a frame failed: the rest is not read
                        break
                    for frame in picture.frames:  # a track's files are a photo face's
                        self._claim(names, ('frame', frame.name), item.source)
                    preds = [self.predict(frame) for frame in picture.frames]
                    record.seconds += time.perf_counter() - start
                    yield functools.partial(self._add_frame, recorder, picture, preds, record,
                                            progress, err)
                    start = time.perf_counter()
            except Exception as e:  # noqa: BLE001 - the frames done so far are kept
                record.fail(item.source, e, err)
            handed_over = True
            yield functools.partial(self._commit_clip, recorder, record, err, progress,
                                    clip.expected)
        finally:
            if not handed_over:  # interrupted, or closed by run(): nothing is committed
                recorder.abort()

    def _add_frame(self, recorder, picture, preds, record, progress, err):
        """recorder.add() on the worker thread; a failure is reported and stops the clip
        (its frames so far are kept)."""
        start = time.perf_counter()
        try:
            record.frames += recorder.add(picture, preds)
        except Exception as e:  # noqa: BLE001 - reported per clip, the batch goes on
            record.fail(record.source, e, err)
            return
        finally:
            record.seconds += time.perf_counter() - start
        if progress is not None:
            progress.update()

    def _commit_clip(self, recorder, record, err, progress, expected):
        """The clip's outputs, all together (worker thread); the bar's frame count settles."""
        start = time.perf_counter()
        try:
            written = recorder.finish()
            record.outputs += written
            record.faces += len(recorder.tracks)
            self.videos_written += bool(written)
            if not record.outputs and not record.error:
                raise ValueError('no face found in any of its %d frame(s)' % record.frames)
        except Exception as e:  # noqa: BLE001 - reported per clip, the batch goes on
            record.fail(record.source, e, err)
        finally:
            record.seconds += time.perf_counter() - start
        if progress is not None:  # the clip counted as its expected frames: now as its real
            progress.expect(record.frames - max(expected, 1))

    def _write(self, picture, preds, staging, record, err):
        """save() on the worker thread, noting the result in ``record``."""
        start = time.perf_counter()
        try:
            record.outputs += self.save(picture, preds, staging, record.source)
            record.faces += len(picture.frames)
        except Exception as e:  # noqa: BLE001 - reported per picture, the batch goes on
            record.fail(record.source, e, err)
        finally:
            record.seconds += time.perf_counter() - start

    def _finish(self, record, counts, manifest, progress):
        """The item is done: count it, append its manifest line, advance the bar (a clip's
        frames advanced it already)."""
        status = record.status()
        counts[status] += 1
        if manifest is not None:
            manifest.append(record.source, status, record.error,
                            record.faces if self.config.detect_faces else None, record.outputs,
                            record.seconds, record.video())
        if progress is not None and record.frames is None:
            progress.update()


class ItemRecord:
    """What happened to one item so far: its first error (one line), outputs, faces, and the
    seconds spent on it (reading, predicting, writing; not waiting for other items)."""

    def __init__(self, source):
        self.source = source
        self.seconds = 0.0
        self.error = None
        self.outputs = []
        self.faces = 0
        self.frames = None  # video frames written (None: not a video)
        self.settings = None  # a video's util.pipeline.outputs.clip_settings

    def video(self):
        """The manifest's video fields ({'frames', 'settings'}), None for a photo."""
        return None if self.frames is None else {'frames': self.frames,
                                                 'settings': self.settings}

    def status(self):
        """'ok', 'failed' (nothing written) or 'partial' (a clip cut short, its frames kept)."""
        if not self.error:
            return 'ok'
        return 'partial' if self.frames and self.outputs else 'failed'

    def fail(self, source, error, err):
        """Report ``error`` (one line on ``err``) and keep the first one."""
        line = report(source, error, err)
        self.error = self.error or line


def whole_box(image):
    """(x0, y0, x1, y1) of a whole (H,W,...) image."""
    height, width = image.shape[:2]
    return (0., 0., float(width), float(height))


def crop_box(frame):
    """(x0, y0, x1, y1) a frame is cropped around: its box, or the whole image."""
    return whole_box(frame.image) if frame.box is None else frame.box


def face_box(frame):
    """(x0, y0, x1, y1) of a frame's detected face, or of the whole image without detection."""
    return whole_box(frame.image) if frame.detection is None else frame.detection.box


def points_text(points):
    """(K,D) points -> text, one row per point, values separated by a space, written with 17
    significant digits (np.loadtxt reads back the exact float64 values)."""
    return ''.join(' '.join('%.17g' % x for x in row) + '\n'
                   for row in np.asarray(points, dtype=np.float64)).encode('ascii')


def printable(text):
    """``text`` on one line: control characters and undecodable bytes of file names
    (surrogate escapes) written as backslash escapes."""
    raw = text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    return ''.join(ch if ch.isprintable() else ch.encode('unicode_escape').decode('ascii')
                   for ch in raw)


def report(source, error, err):
    """Print one line 'error: SOURCE: message' for a failed item (its first line, with the
    source made printable first, so a file name with a newline cannot cut the message);
    return the line without 'error: '."""
    msg = str(error).replace(source, printable(source)) if str(error) else type(error).__name__
    msg = next((line for line in msg.splitlines() if line.strip()), type(error).__name__)
    if printable(source) not in msg:
        msg = '%s: %s' % (printable(source), msg)
    print('error: ' + printable(msg), file=err)
    return printable(msg)

