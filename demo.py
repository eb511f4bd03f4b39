"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse flags, find the model files, run the pipeline, set the exit status
(0 all images done, 1 some image failed, 2 the model files are missing or unusable).
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # keep TensorFlow's start-up chatter quiet

from absl import flags  # noqa: E402

from config import get_config  # noqa: E402
from util.demo_assets import DEMO_NOTICE  # noqa: E402
from util.model_files import resolve_model_files  # noqa: E402


def main(argv=None):
    try:
        config = get_config(argv)
    except flags.Error as e:
        print('error: %s (see --helpfull)' % e, file=sys.stderr)
        return 2
    if config.demo:
        print(DEMO_NOTICE, file=sys.stderr)
    try:
        files = resolve_model_files(config)
        from util.pipeline import Pipeline, list_images  # heavy imports (TensorFlow) only now
        pipeline = Pipeline(config, files)
    except (IOError, ValueError) as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    images = list_images(config.img_path)
    failed = pipeline.run(images, config.out_folder)
    done = len(images) - failed
    print('%d of %d image(s) done, outputs in %s' % (done, len(images), config.out_folder))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
