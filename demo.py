"""RingNet demo: ``python -m demo --img_path IMG --out_folder OUT [--save_obj_file=True ...]``.

Thin by design: parse the flags and hand the run to util.pipeline.command (exit status 2 for a
wrong flag). ``--help`` and a wrong flag answer before anything heavy is imported: the
pipeline's modules (numpy, OpenCV, numba) are imported only after them.
"""
import os
import sys

from absl import flags

from config import get_config, help_text, wants_help


def print_help():
    """Print --help to stdout -> exit status 0, also when the reader stops early (`| head`)."""
    try:
        print(help_text(), flush=True)
    except BrokenPipeError:
        # the rest is not wanted; point stdout at nothing so the exit's flush cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def quiet_tensorflow(verbose):
    """Before TensorFlow loads: its info and warning logs off (TF_CPP_MIN_LOG_LEVEL=2 unless
    set), its start-up notices filtered (util/io/stderr_filter.py); --verbose: all of it."""
    from util.io.stderr_filter import SHOW_ALL
    if verbose:
        os.environ[SHOW_ALL] = '1'
    else:
        os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if wants_help(argv):
        return print_help()
    try:
        config = get_config(argv)
    except flags.Error as e:
        print('error: %s (see --help)' % e, file=sys.stderr)
        return 2
    quiet_tensorflow(config.verbose)
    from util.pipeline.command import run_command
    if config.demo:  # synthetic stand-ins for the licensed files, generated once
        from synthetic.demo_assets import DEMO_NOTICE, ensure_demo_assets
        return run_command(config, ensure_demo_assets, DEMO_NOTICE)
    return run_command(config)


if __name__ == '__main__':
    sys.exit(main())
