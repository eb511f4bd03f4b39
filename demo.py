"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse flags, check the input and the output folder, find the model files, pick
the backend, run the pipeline, print one summary line and set the exit status: 0 all images
done, 1 some image failed, 2 nothing could start (a wrong flag, no input, an output folder that
cannot be written, model files missing or unusable), 130 / 143 interrupted by SIGINT / SIGTERM.
Answers that need no network come before TensorFlow is imported.
"""
import os
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # keep TensorFlow's start-up chatter quiet

from absl import flags  # noqa: E402

from config import get_config, help_text, wants_help  # noqa: E402
from synthetic.demo_assets import DEMO_NOTICE  # noqa: E402
from util.io.atomic import check_writable  # noqa: E402
from util.pipeline import Pipeline  # noqa: E402
from util.pipeline.backends import load_backend  # noqa: E402
from util.pipeline.model_files import resolve_model_files  # noqa: E402
from util.pipeline.pipeline import printable  # noqa: E402
from util.pipeline.sources import InputError, image_items, input_paths  # noqa: E402


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


def summary(done, total, out_folder, interrupted):
    """The final line: how many images were done, and where (only if any were)."""
    line = '%d of %d image(s) done' % (done, total)
    if done:
        line += ', outputs in %s' % printable(out_folder)
    return line + ('; interrupted' if interrupted else '')


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if wants_help(argv):
        print(help_text())
        return 0
    try:
        config = get_config(argv)
    except flags.Error as e:
        print('error: %s (see --help)' % e, file=sys.stderr)
        return 2
    try:
        paths = input_paths(config.img_path)
    except InputError as e:
        print('error: %s' % printable(str(e)), file=sys.stderr)
        return 2
    with StopSignals() as stop:
        try:
            if config.demo:
                print(DEMO_NOTICE, file=sys.stderr)
            files = resolve_model_files(config)
            check_writable(config.out_folder)
            pipeline = Pipeline(config, files, load_backend(files['load_path'], config.batch_size))
        except (IOError, ValueError) as e:
            print('error: %s' % e, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(summary(0, len(paths), config.out_folder, True))
            return 128 + (stop.signum or signal.SIGINT)
        result = pipeline.run(image_items(paths, config.max_pixels), config.out_folder)
    print(summary(result.done, len(paths), config.out_folder, result.interrupted))
    if result.interrupted:
        return 128 + (stop.signum or signal.SIGINT)
    return 1 if result.failed or result.done < len(paths) else 0


if __name__ == '__main__':
    sys.exit(main())
