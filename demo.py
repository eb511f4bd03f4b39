"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse flags, list the inputs (and those --skip_existing skips), check the output
folder, find the model files, pick the backend, run the pipeline with a manifest and a progress
bar, print one summary line and set the exit status: 0 all inputs done (or skipped), 1 some
input failed (or a video was cut short), 2 nothing could start (a wrong flag, no input, an
output folder that cannot be written, model files missing or unusable, Ray missing or
unreachable), 130 / 143 interrupted by SIGINT / SIGTERM.
Answers that need no network come before TensorFlow is imported.
"""
import contextlib
import os
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # keep TensorFlow's start-up chatter quiet

from absl import flags  # noqa: E402

from config import get_config, help_text, wants_help  # noqa: E402
from synthetic.demo_assets import DEMO_NOTICE  # noqa: E402
from util.io.atomic import check_writable, recover_staging  # noqa: E402
from util.pipeline import Pipeline  # noqa: E402
from util.pipeline.backends import load_backend  # noqa: E402
from util.pipeline.model_files import resolve_model_files  # noqa: E402
from util.pipeline.manifest import Manifest, read_manifest  # noqa: E402
from util.pipeline.outputs import finished_outputs  # noqa: E402
from util.pipeline.pipeline import RunResult, printable  # noqa: E402
from util.pipeline.progress import Progress, wants_bar  # noqa: E402
from util.pipeline.sources import (InputError, clashing, input_entries,  # noqa: E402
                                   work_items)


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


def summary(done, total, out_folder, interrupted, skipped=0, video_codec=None, partial=0):
    """The final line: how many inputs were done (and skipped, or cut short), and where
    (only if any were); the codec of the overlay videos when there were videos."""
    line = '%d of %d input(s) done' % (done, total)
    if partial:
        line += ', %d cut short (their frames kept)' % partial
    if skipped:
        line += ', %d skipped (outputs already there)' % skipped
    if done or skipped or partial:
        line += ', outputs in %s' % printable(out_folder)
    if video_codec:
        line += ', overlay videos in %s' % video_codec
    return line + ('; interrupted' if interrupted else '')


def split_existing(entries, clashes, config):
    """--skip_existing: ([(index, pending Entry)], [(skipped Entry, its outputs, faces,
    video)]).
    An entry whose NAME clashes with an earlier one is never skipped (it is refused)."""
    if not config.skip_existing:
        return list(enumerate(entries)), []
    recover_staging(config.out_folder)  # undo a killed run's half-done commit first
    previous = read_manifest(config.out_folder)
    pending, skipped = [], []
    for k, entry in enumerate(entries):
        found = None if k in clashes else finished_outputs(
            config.out_folder, entry.name, config, previous.get(entry.path))
        if found is None:
            pending.append((k, entry))
        else:
            skipped.append((entry,) + found)
    return pending, skipped


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if wants_help(argv):
        print(help_text())
        return 0
    try:
        config = get_config(argv)
        entries = input_entries(config.img_path, config.recursive, exclude=config.out_folder)
    except flags.Error as e:
        print('error: %s (see --help)' % e, file=sys.stderr)
        return 2
    except InputError as e:
        print('error: %s' % printable(str(e)), file=sys.stderr)
        return 2
    clashes = clashing(entries)
    pending, skipped = split_existing(entries, clashes, config)
    with StopSignals() as stop, contextlib.ExitStack() as stack:
        try:
            if config.demo and pending:
                print(DEMO_NOTICE, file=sys.stderr)
            pipeline = None
            files = resolve_model_files(config) if pending else None
            check_writable(config.out_folder)
            manifest = stack.enter_context(Manifest(config.out_folder))
            if pending and config.engine == 'local':  # nothing left to do: no network
                pipeline = Pipeline(config, files, load_backend(
                    files['load_path'], config.batch_size, config.backend, config.precision))
        except (IOError, ValueError) as e:
            print('error: %s' % e, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(summary(0, len(entries), config.out_folder, True, len(skipped)))
            return 128 + (stop.signum or signal.SIGINT)
        for entry, paths, faces, video in skipped:
            manifest.append(entry.path, 'skipped', faces=faces, outputs=paths, video=video)
        todo = [entry for _, entry in pending]
        refused = {n: clashes[k] for n, (k, _) in enumerate(pending) if k in clashes}
        bar = wants_bar(sys.stderr, config.quiet)
        if pending and config.engine == 'ray':
            from util.pipeline.ray_runner import RayUnavailable, run_ray  # imports no Ray
            try:
                result = run_ray(config, todo, refused, files, config.out_folder, manifest,
                                 sys.stderr, bar)
            except RayUnavailable as e:
                print('error: %s' % e, file=sys.stderr)
                return 2
        else:
            with Progress(len(entries), sys.stderr, bar, initial=len(skipped)) as progress:
                result = (pipeline.run(work_items(todo, config, refused), config.out_folder,
                                       progress.stream, manifest, progress)
                          if pipeline else RunResult(0, 0, False))
    print(summary(result.done, len(entries), config.out_folder, result.interrupted,
                  len(skipped), pipeline.video_codec if pipeline and pipeline.videos_written
                  else None, result.partial))
    if result.interrupted:
        return 128 + (stop.signum or signal.SIGINT)
    return 1 if result.failed or result.done + len(skipped) < len(entries) else 0


if __name__ == '__main__':
    sys.exit(main())
