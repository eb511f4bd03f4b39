"""Seconds for ``python -m demo --help`` (a fresh interpreter each time), next to a bare
interpreter's start and an import of the pipeline, measured in one run.

Usage: python -m bench.bench_help [--repeats 9]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds(args, repeats):
    """Median wall seconds of ``python ARGS`` run from the repository root."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable] + args, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=9)
    args = parser.parse_args(argv)
    bare = seconds(['-c', 'pass'], args.repeats)
    help_s = seconds(['-m', 'demo', '--help'], args.repeats)
    pipeline = seconds(['-c', 'import util.pipeline.command'], args.repeats)
    print('python -c pass                      %6.3f s' % bare)
    print('python -m demo --help               %6.3f s  (%.3f s over the bare start)'
          % (help_s, help_s - bare))
    print('import util.pipeline.command       %6.3f s  (what --help no longer loads)' % pipeline)


if __name__ == '__main__':
    main()
