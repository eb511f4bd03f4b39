"""One run of the command, after its flags are parsed: list the inputs (and those
--skip_existing skips), check the output folder, find the model files, pick the backend, run
the engine with a manifest and a progress bar, print one summary line -> the exit status: 0
all inputs done (or skipped), 1 some input failed (or a video was cut short), 2 nothing could
start (no input, an output folder that cannot be written, holds a link or is in use by another
run, model files missing or unusable, Ray missing or unreachable), 130 / 143 interrupted by
SIGINT / SIGTERM. Answers that need no network come before TensorFlow is imported.

The summary line and the exit status are made from the manifest's own tally of the lines it
was handed (util.pipeline.manifest.Manifest), on either engine, so they say what the manifest
and the disk hold.
"""
import contextlib
import os
import signal
import sys
import time

from util.errors import OutOfMemory, out_of_memory, printable
from util.io.atomic import check_writable
from util.io.lock import hold_folder
from util.io.no_follow import find_link, link_error
from util.model.backend import load_backend
from util.pipeline.inputs import InputError, clashing, input_entries
from util.pipeline.manifest import Manifest
from util.pipeline.model_files import resolve_model_files
from util.pipeline.now_inputs import is_now_run, now_entries, now_work_items
from util.pipeline.progress import Progress, wants_bar
from util.pipeline.reading import work_items
from util.pipeline.resume import split_existing
from util.pipeline.run_report import RunClock, report_run
from util.pipeline.runner import Pipeline, RunResult


class StopSignals:
    """While active, SIGINT and SIGTERM raise KeyboardInterrupt once (the pipeline then
    finishes the image being written and stops); later ones are ignored. ``signum`` is the
    first signal received, for the exit status 128 + signum."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            raise KeyboardInterrupt

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def summary(done, total, out_folder, interrupted, skipped=0, video_codec=None, partial=0,
            box_framed=0, unfound=(), stopped=None, speed=None):
    """The final line: how many inputs were done (and skipped, or cut short), and where
    (only if any were); ``speed`` (seconds, images, backend label): how long the inputs took
    once the network was loaded, their images per second and what ran the network, when it
    ran; the codec of the overlay videos when there were videos; with --now_dataset, how many
    were framed from NoW's box because no face was found in it; the clips where the face was
    found in some frames only (``unfound``: [Unfound]); ``stopped``: why the run stopped early
    (e.g. the manifest could not be written)."""
    line = '%d of %d input(s) done' % (done, total)
    if speed is not None:
        seconds, images, label = speed
        line += ' in %.1f s (%s images/s, %s)' % (seconds, rate_text(images, seconds), label)
    if box_framed:
        line += ", %d framed from NoW's face box (no face found in it)" % box_framed
    if partial:
        line += ', %d cut short (their frames kept)' % partial
    if skipped:
        line += ', %d skipped (outputs already there)' % skipped
    if done or skipped or partial:
        line += ', outputs in %s' % printable(out_folder)
    if video_codec:
        line += ', overlay videos in %s' % video_codec
    for clip in unfound[:3]:
        line += '; face found in %d of %d frames (%s)' % (clip.frames_with_face, clip.frames,
                                                          printable(clip.source))
    if len(unfound) > 3:
        line += '; and %d more clips with frames without a face (see the manifest)' % (
            len(unfound) - 3)
    if stopped:
        line += '; stopped: %s' % stopped
    return line + ('; interrupted' if interrupted else '')


def rate_text(images, seconds):
    """images/seconds: one decimal from 1 up ('13.2', '1234.5'), two significant digits
    below ('0.041')."""
    rate = images / seconds if seconds > 0 else 0.0
    return '%.1f' % rate if rate >= 1 or rate == 0 else '%.2g' % rate


def refuse_links(out_folder):
    """Raise util.io.no_follow.LinkInside naming the first symbolic link inside
    ``out_folder`` (at any depth: a sub-folder, the manifest, the staging folder; OUT itself
    may be one): nothing is ever written through one (docs/formats.md §5)."""
    link = find_link(out_folder)
    if link is not None:
        raise link_error(link)


def run_command(config, demo_files=None, notice=None):
    """Run the command ``config`` (the parsed flags) -> exit status. demo_files: () -> {key:
    path} of stand-in model files (--demo), used instead of the licensed files; notice: a line
    printed once before they are used.

    Up front, in this order: the inputs; the model files (unless --skip_existing, which may
    need none); the output folder: made, checked for links, and locked for this run
    (util.io.lock.hold_folder: a second run into it is refused) before --skip_existing reads
    it, the manifest starts afresh and the network loads. The run's report is written from
    the manifest at the end, the folder still locked.
    """
    clock = RunClock()
    out_folder = config.out_folder
    if is_now_run(config):  # Ray's workers resolve it from elsewhere
        config.now_dataset = os.path.abspath(config.now_dataset)
    try:
        entries = (now_entries(config.now_dataset, config.now_split) if is_now_run(config)
                   else input_entries(config.img_path, config.recursive, exclude=out_folder))
        if not entries:
            raise InputError('%s: the NoW image list of the %s split is empty'
                             % (config.now_dataset, config.now_split))
    except (InputError, ValueError) as e:  # util.now.files.NowFormatError is a ValueError
        print('error: %s' % printable(str(e)), file=sys.stderr)
        return 2
    clashes = clashing(entries)

    def model_files():
        if demo_files and notice:
            print(notice, file=sys.stderr)
        return demo_files() if demo_files else resolve_model_files(config)

    def note(line):
        print('note: %s' % printable(line), file=sys.stderr)

    # ``folder`` holds the lock until the report is written; ``stack`` the manifest, closed
    # before the report reads it
    with StopSignals() as stop, contextlib.ExitStack() as folder, \
            contextlib.ExitStack() as stack:
        try:
            files = None if config.skip_existing else model_files()  # before OUT is made
            check_writable(out_folder)
            refuse_links(out_folder)
            folder.enter_context(hold_folder(out_folder, note))
            pending, skipped = split_existing(entries, clashes, config)
            if pending and files is None:
                files = model_files()
            manifest = stack.enter_context(Manifest(out_folder))
            pipeline = None
            if pending and config.engine == 'local':  # nothing left to do: no network
                pipeline = Pipeline(config, files, load_backend(
                    files['load_path'], config.batch_size, config.backend, config.precision))
        except (OSError, ValueError, ImportError) as e:  # one line (missing files: one each)
            print('error: %s' % (e if str(e) else type(e).__name__), file=sys.stderr)
            return 2
        except MemoryError as e:  # loading the network or FLAME: say it is memory
            if not isinstance(e, OutOfMemory):
                e = out_of_memory('the model files', 'loading them', e)
            print('error: %s' % e, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(summary(0, len(entries), out_folder, True))
            return 128 + (stop.signum or signal.SIGINT)
        for entry, outputs, faces, video in skipped:
            manifest.append(entry.path, 'skipped', faces=faces, outputs=outputs, video=video)
        todo = [entry for _, entry in pending]
        box_framed = []  # --now_dataset, local engine: inputs framed from NoW's box
        refused = {n: clashes[k] for n, (k, _) in enumerate(pending) if k in clashes}
        bar = wants_bar(sys.stderr, config.quiet)
        label = pipeline.backend.label if pipeline else None
        start = time.perf_counter()
        if pending and config.engine == 'ray':
            from util.pipeline.ray_runner import RayUnavailable, run_ray  # imports no Ray
            try:
                result, label = run_ray(config, todo, refused, files, out_folder, manifest,
                                        sys.stderr, bar)
            except RayUnavailable as e:
                print('error: %s' % e, file=sys.stderr)
                return 2
        else:
            items = (now_work_items(todo, config, refused, box_framed) if is_now_run(config)
                     else work_items(todo, config, refused))
            with Progress(len(entries), sys.stderr, bar, initial=len(skipped)) as progress:
                try:
                    result = (pipeline.run(items, out_folder, progress.stream, manifest,
                                           progress)
                              if pipeline else RunResult(0, 0, False))
                except OSError as e:  # the staging folder (a link made since the check)
                    print('error: %s' % printable(str(e)), file=progress.stream)
                    result = RunResult(0, 0, False)
        seconds = time.perf_counter() - start
        stack.close()  # the manifest is closed: its tally (and any write failure) is final
        reported = result
        if not config.noreport:  # from the manifest: every input of the run, skipped too
            reported = report_run(config, len(entries), clock, result,
                                  pipeline.backend if pipeline else None, sys.stderr)
    if manifest.error:
        print('error: %s' % printable(manifest.error), file=sys.stderr)
    counts = manifest.statuses
    print(summary(counts['ok'], len(entries), out_folder, reported.interrupted,
                  counts['skipped'], pipeline.video_codec if pipeline and pipeline.videos_written
                  else None, counts['partial'], len(box_framed), manifest.unfound,
                  'the manifest could not be written' if manifest.error else None,
                  (seconds, manifest.images, label) if label else None))
    if reported.interrupted:
        return 128 + (stop.signum or signal.SIGINT)
    return 1 if (manifest.error or reported.failed > result.failed or counts['failed']
                 or counts['partial'] or counts['ok'] + counts['skipped'] < len(entries)) else 0
