"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse flags, find the model files, run the pipeline, set the exit status
(0 all images done, 1 some image failed, 2 the model files are missing or unusable).
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # keep TensorFlow's start-up chatter quiet

from absl import flags  # noqa: E402

from config import get_config, help_text, wants_help  # noqa: E402
from util.demo_assets import DEMO_NOTICE  # noqa: E402
from util.model_files import resolve_model_files  # noqa: E402


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
    if config.demo:
        print(DEMO_NOTICE, file=sys.stderr)
    from util.pipeline import Pipeline, list_images  # heavy imports (TensorFlow) only now
    images = list_images(config.img_path)
    if not images:
        print('error: %s: no image files in this folder' % config.img_path, file=sys.stderr)
        return 1
    try:
        pipeline = Pipeline(config, resolve_model_files(config))
    except (IOError, ValueError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    failed = pipeline.run(images, config.out_folder)
    done = len(images) - failed
    print('%d of %d image(s) done, outputs in %s' % (done, len(images), config.out_folder))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
