"""Pictures -> RingNet prediction for each frame -> every requested output.

The backend (the network) is handed in and the FLAME files are loaded once per ``Pipeline``;
pictures (util.face.frames) then stream through. A picture's outputs (its panel and each
frame's files) are all computed in memory first, then written to temporary files that are
renamed into place only once every one of them is written: a failing picture leaves none of
its outputs (and no partial file) behind, and never stops the rest of the batch.
"""
import collections
import concurrent.futures
import functools
import sys
import time

from util.errors import printable, report
from util.face.frames import Clip, Prediction
from util.face.preprocess import preprocess_image
from util.io.atomic import Staging, recover_staging
from util.io.video_io import H264
from util.outputs.context import load_output_context
from util.outputs.photo import picture_outputs
from util.pipeline.clip import ClipRecorder
from util.pipeline.inputs import NameClaims
from util.pipeline.resume import clip_settings

RunResult = collections.namedtuple('RunResult', 'done failed interrupted partial',
                                   defaults=(0,))
RunResult.__doc__ = """done / failed: items (inputs) whose outputs were all written / that
failed or were cut short (reported); interrupted: the run stopped early on KeyboardInterrupt
(SIGINT, or SIGTERM turned into one by the command line), after finishing the picture being
written; partial: of the failed, the videos cut short whose frames were written."""


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
    backend: the network (util.model.backend), already loaded. The outputs are computed by
    util.outputs from the context loaded here (util.outputs.context).
    """

    def __init__(self, config, files, backend):
        check_backend(config, backend, files['load_path'])
        self.config = config
        self.backend = backend
        self.context = load_output_context(config, files, backend.n_vertices)
        self.video_codec = H264  # of the overlay videos
        self._manifest = self._stop = None  # run()'s, while it runs
        self.videos_written = 0  # overlay videos committed (the summary names their codec)

    def predict(self, frame):
        """Crop and run one util.face.frames.Frame -> Prediction."""
        crop, proc_param = preprocess_image(frame.image, self.config.img_size, frame.box)
        vertices, theta = self.backend.predict(crop[None], get_parameters=True)
        return Prediction(frame.image, proc_param, vertices[0], theta[0])

    def save(self, picture, preds, staging, source=''):
        """Compute and write every requested output of a picture -> {relative path: size}
        written.

        All-or-nothing (util.io.atomic.Staging.commit): the outputs appear together or not
        at all, whatever fails.
        """
        return staging.commit(picture_outputs(picture, preds, self.context, source))

    def process(self, picture, out_folder, source=''):
        """All outputs of one picture, one step after the other -> relative paths written."""
        with Staging(out_folder) as staging:
            return list(self.save(picture, [self.predict(f) for f in picture.frames],
                                  staging, source))

    def run(self, items, out_folder, err=sys.stderr, manifest=None, progress=None, stop=None):
        """Process every picture of every item (util.pipeline.reading.Item) -> RunResult
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
        earlier run into ``out_folder`` are cleaned up first. Once ``manifest`` has failed to
        take a line (its ``error``), or ``stop()`` says so (a Ray job being interrupted),
        nothing more is written: the items already written still get their lines, the others
        none, and the run ends.
        """
        recover_staging(out_folder)
        self._manifest, self._stop = manifest, stop
        counts = collections.Counter()  # item statuses, counted on the worker thread only
        names = NameClaims()  # 'a.jpg' and 'a.png' would write the same files
        interrupted = False
        with Staging(out_folder) as staging:
            jobs = None
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
                writing = None
                try:
                    for item in items:
                        if self._halted():
                            break
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

    def _predicted(self, source, pictures, names, record, err):
        """(picture, [Prediction]) for each picture that has free names and predicts;
        failures are reported and noted in ``record``."""
        start = time.perf_counter()
        for picture in pictures:
            names.claim('panel', picture.name, source)
            for frame in picture.frames:
                names.claim('frame', frame.name, source)
                if len(picture.frames) > 1:  # its own panel, images/NAME_face<k>.png
                    names.claim('panel', frame.name, source)
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
        names.claim('video', clip.name, item.source)
        recorder = ClipRecorder(self.context, self.config, clip, staging, item.source)
        if recorder.rate_problem:  # not a failure: the clip is done, its overlay retimed
            record.note = '%s: %s' % (printable(item.source), recorder.rate_problem)
            print('note: %s' % record.note, file=err)
        record.frames = 0
        record.settings = clip_settings(self.config)
        if progress is not None:  # one unit per frame instead of one for the clip
            yield functools.partial(progress.expect, max(clip.expected, 1) - 1, 'frame')
        handed_over = False  # the commit job is the worker's: it runs, even if interrupted
        try:
            try:
                start = time.perf_counter()
                for picture in clip.pictures:
                    if recorder.stopped or self._halted():  # the rest is not read
                        break
                    for frame in picture.frames:  # a track's files are a photo face's
                        names.claim('frame', frame.name, item.source)
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

    def _halted(self, record=None):
        """Has the manifest failed to take a line (a full disk: an output it cannot list
        would not be known to the next run), or has the run been asked to stop? Then nothing
        more is written; ``record``, the item that wanted to write, gets no line."""
        halted = bool(getattr(self._manifest, 'error', None)) or bool(self._stop and
                                                                       self._stop())
        if halted and record is not None:
            record.halted = True
        return halted

    def _add_frame(self, recorder, picture, preds, record, progress, err):
        """recorder.add() on the worker thread; a failure is reported and stops the clip
        (its frames so far are kept)."""
        if self._halted(record):
            return
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
        if self._halted(record):
            recorder.abort()
            return
        start = time.perf_counter()
        try:
            written = recorder.finish()
            record.outputs.update(written)
            record.frames_with_face = recorder.frames_with_face
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
        if self._halted(record):
            return
        start = time.perf_counter()
        try:
            record.outputs.update(self.save(picture, preds, staging, record.source))
            record.faces += len(picture.frames)
        except Exception as e:  # noqa: BLE001 - reported per picture, the batch goes on
            record.fail(record.source, e, err)
        finally:
            record.seconds += time.perf_counter() - start

    def _finish(self, record, counts, manifest, progress):
        """The item is done: count it, append its manifest line, advance the bar (a clip's
        frames advanced it already)."""
        if record.halted:  # the run stopped before its outputs: this item did not happen
            return
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
        self.outputs = {}  # relative path -> size in bytes
        self.faces = 0
        self.frames = None  # video frames written (None: not a video)
        self.frames_with_face = 0  # of those, the frames where a face was found
        self.settings = None  # a video's util.pipeline.resume.clip_settings
        self.note = None  # a video's one-line note (a header's absurd frame rate)
        self.halted = False  # the run stopped before this item's outputs were written

    def video(self):
        """The manifest's video fields ({'frames', 'frames_with_face', 'settings', and
        'note' when there is one}), None for a photo."""
        if self.frames is None:
            return None
        video = {'frames': self.frames, 'frames_with_face': self.frames_with_face,
                 'settings': self.settings}
        return dict(video, note=self.note) if self.note else video

    def status(self):
        """'ok', 'failed' (nothing written) or 'partial' (a clip cut short, its frames kept)."""
        if not self.error:
            return 'ok'
        return 'partial' if self.frames and self.outputs else 'failed'

    def fail(self, source, error, err):
        """Report ``error`` (one line on ``err``) and keep the first one."""
        line = report(source, error, err)
        self.error = self.error or line
