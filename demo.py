"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse flags, list the inputs, find the model files, pick the backend, run the
pipeline, set the exit status (0 all images done, 1 some image failed, 2 the model files are
missing or unusable). Answers that need no network (--help, a wrong flag, no input) come
before TensorFlow is imported.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # keep TensorFlow's start-up chatter quiet

from absl import flags  # noqa: E402

from config import get_config, help_text, wants_help  # noqa: E402
from synthetic.demo_assets import DEMO_NOTICE  # noqa: E402
from util.pipeline import Pipeline  # noqa: E402
from util.pipeline.backends import load_backend  # noqa: E402
from util.pipeline.model_files import resolve_model_files  # noqa: E402
from util.pipeline.sources import InputError, image_items, input_paths  # noqa: E402


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
        print('error: %s' % e, file=sys.stderr)
        return 1
    if config.demo:
        print(DEMO_NOTICE, file=sys.stderr)
    try:
        files = resolve_model_files(config)
        pipeline = Pipeline(config, files, load_backend(files['load_path'], config.batch_size))
    except (IOError, ValueError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    failed = pipeline.run(image_items(paths), config.out_folder)
    done = len(paths) - failed
    print('%d of %d image(s) done, outputs in %s' % (done, len(paths), config.out_folder))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
