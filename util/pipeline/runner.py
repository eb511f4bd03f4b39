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

import numpy as np

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
        self.batch_size = max(1, int(config.batch_size))  # frames per network call

    def predict(self, frame):
        """Crop and run one util.face.frames.Frame -> Prediction."""
        return self.predict_frames([frame])[0]

    def predict_frames(self, frames):
        """Crop and run [Frame] -> [Prediction], the network on --batch_size crops at a time
        (the backend runs them image by image where its batch is fixed)."""
        crops = [preprocess_image(f.image, self.config.img_size, f.box) for f in frames]
        step = self.batch_size
        preds = []
        for start in range(0, len(crops), step):
            chunk = crops[start:start + step]
            vertices, theta = self.backend.predict(np.stack([crop for crop, _ in chunk]),
                                                   get_parameters=True)
            preds += [Prediction(frame.image, proc_param, v, t) for frame, (_, proc_param), v, t
                      in zip(frames[start:start + step], chunk, vertices, theta)]
        return preds

    def predict_pictures(self, pictures):
        """[Picture] -> for each, its [Prediction] or the exception it raised. Their frames
        go through the network together; when that fails, each picture alone, so that a bad
        picture fails alone."""
        frames = [frame for picture in pictures for frame in picture.frames]
        try:
            preds = iter(self.predict_frames(frames))
            return [[next(preds) for _ in picture.frames] for picture in pictures]
        except Exception as e:  # noqa: BLE001 - found below, picture by picture
            if len(pictures) == 1:
                return [e]
        results = []
        for picture in pictures:
            try:
                results.append(self.predict_frames(picture.frames))
            except Exception as e:  # noqa: BLE001 - reported for its item by the caller
                results.append(e)
        return results

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
        on the next batch of pictures (the network releases the GIL); at most one batch
        (--batch_size pictures) waits for it, so memory stays flat. When an item finishes,
        its line is appended to ``manifest`` (util.pipeline.manifest.Manifest); ``progress``
        advances per photo and per video frame. On KeyboardInterrupt the pictures handed to
        the worker are finished (or rolled back, if they fail), a clip being read is dropped,
        then the run stops. Leftovers of a killed earlier run into ``out_folder`` are cleaned
        up first. Once ``manifest`` has failed to take a line (its ``error``), or ``stop()``
        says so (a Ray job being interrupted), nothing more is written: the items already
        written still get their lines, the others none, and the run ends.
        """
        recover_staging(out_folder)
        self._manifest, self._stop = manifest, stop
        counts = collections.Counter()  # item statuses, counted on the worker thread only
        names = NameClaims()  # 'a.jpg' and 'a.png' would write the same files
        interrupted = False
        with Staging(out_folder) as staging:
            finish = functools.partial(self._finish, counts=counts, manifest=manifest,
                                       progress=progress)
            jobs = self._jobs(items, names, err, staging, progress, finish)
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
                last = None
                try:
                    for job, waits in jobs:
                        if waits and last is not None:  # the worker runs jobs in order: all
                            last.result()               # of the previous batch are done
                        last = worker.submit(job)
                except KeyboardInterrupt:
                    interrupted = True
                # leaving the executor waits for the queued writes
            jobs.close()  # an interrupted clip drops its staged outputs
        return RunResult(counts['ok'], counts['failed'] + counts['partial'], interrupted,
                         counts['partial'])

    def _jobs(self, items, names, err, staging, progress, finish):
        """(job, waits) for the worker thread, for every item in order: each picture's writes,
        then the item's ``finish(record)``; the first write of a network batch ``waits`` for
        the worker to finish the previous batch (so at most one batch is held). Photos are
        read ahead until their frames fill a network batch (--batch_size), then predicted
        together; a video clip's frames are batched within the clip. Failures are reported
        and noted in the item's record."""
        waiting = []  # (record, [Picture]) of the photos read, not yet predicted
        for item in items:
            if self._halted():
                break
            record = ItemRecord(item.source)
            read = self._read(item, names, record, err)
            if isinstance(read, Clip):
                yield from self._photo_jobs(waiting, staging, err, finish)
                try:
                    yield from self._clip_jobs(item, read, names, record, err, staging,
                                               progress)
                except Exception as e:  # noqa: BLE001 - one bad item must not stop a batch
                    record.fail(item.source, e, err)
                yield functools.partial(finish, record), False
                continue
            waiting.append((record, read))
            frames = sum(len(p.frames) for _, pictures in waiting for p in pictures)
            if frames >= self.batch_size or not frames:  # a batch, or nothing to predict
                yield from self._photo_jobs(waiting, staging, err, finish)
        yield from self._photo_jobs(waiting, staging, err, finish)

    def _read(self, item, names, record, err):
        """Read ``item`` -> a Clip, or its [Picture] with their names claimed ([] after a
        failure, reported and noted in ``record``)."""
        start = time.perf_counter()
        try:
            read = item.read()
            if isinstance(read, Clip):
                return read
            for picture in read:
                names.claim('panel', picture.name, item.source)
                for frame in picture.frames:
                    names.claim('frame', frame.name, item.source)
                    if len(picture.frames) > 1:  # its own panel, images/NAME_face<k>.png
                        names.claim('panel', frame.name, item.source)
            return read
        except Exception as e:  # noqa: BLE001 - one bad item must not stop a batch
            record.fail(item.source, e, err)
            return []
        finally:
            record.seconds += time.perf_counter() - start

    def _photo_jobs(self, waiting, staging, err, finish):
        """The jobs of the photo items ``waiting`` (emptied): their pictures predicted together,
        each picture's writes, each item's finish. The network's time is shared among the
        items by frames."""
        pictures = [picture for _, read in waiting for picture in read]
        if pictures and self._halted():  # the run stops: these are not predicted either
            waiting[:] = []
            return
        start = time.perf_counter()
        results = iter(self.predict_pictures(pictures) if pictures else [])
        share = (time.perf_counter() - start) / max(1, sum(len(p.frames) for p in pictures))
        done, waiting[:] = list(waiting), []
        waits = True
        for record, read in done:
            for picture in read:
                preds = next(results)
                record.seconds += share * len(picture.frames)
                if isinstance(preds, Exception):
                    record.fail(record.source, preds, err)
                    continue
                yield functools.partial(self._write, picture, preds, staging, record, err), waits
                waits = False
            yield functools.partial(finish, record), False

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
            yield functools.partial(progress.expect, max(clip.expected, 1) - 1, 'frame'), False
        handed_over = False  # the commit job is the worker's: it runs, even if interrupted
        try:
            try:
                for batch in self._clip_batches(clip, names, item.source, recorder, record):
                    start = time.perf_counter()
                    results = self.predict_pictures(batch)
                    record.seconds += time.perf_counter() - start
                    for k, (picture, preds) in enumerate(zip(batch, results)):
                        if isinstance(preds, Exception):
                            raise preds
                        yield functools.partial(self._add_frame, recorder, picture, preds,
                                                record, progress, err), k == 0
            except Exception as e:  # noqa: BLE001 - the frames done so far are kept
                record.fail(item.source, e, err)
            handed_over = True
            yield functools.partial(self._commit_clip, recorder, record, err, progress,
                                    clip.expected), True
        finally:
            if not handed_over:  # interrupted, or closed by run(): nothing is committed
                recorder.abort()

    def _clip_batches(self, clip, names, source, recorder, record):
        """The clip's pictures in lists of up to --batch_size frames (and pictures: a frame
        without a face holds no crop) for one network call each; the reading time counts in
        ``record``."""
        batch, start = [], time.perf_counter()
        for picture in clip.pictures:
            if recorder.stopped or self._halted():  # the rest is not read
                break
            for frame in picture.frames:  # a track's files are a photo face's
                names.claim('frame', frame.name, source)
            batch.append(picture)
            if len(batch) >= self.batch_size or \
                    sum(len(p.frames) for p in batch) >= self.batch_size:
                record.seconds += time.perf_counter() - start
                yield batch
                batch, start = [], time.perf_counter()
        record.seconds += time.perf_counter() - start
        if batch:
            yield batch

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
