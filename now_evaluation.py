"""The NoW benchmark's error metric: ``python -m now_evaluation --predictions PRED --dataset NOW``.

    [--split val] [--metrical --unit mm|cm|m] [--check] [--workers N] [--compare LABEL=DIR ...]

For every image of the split's list, the prediction PRED/subject/challenge/name.obj (and its
7 landmarks, name.npy) is aligned to the subject's scan and the distance from each scan vertex
in the face sphere to the mesh's surface is measured (docs/formats.md §17). Writes
PRED/results/: distances/subject/challenge/name.npy, results.json, results.csv,
cumulative_error.png. ``--check`` only validates the predictions.

Exit status: 0 every image evaluated (or, with --check, every prediction usable), 1 some were
missing or broken (one line each on stderr; counted as missing), 2 nothing could start (a
wrong flag, no such folder, no image list, --split test without --check), 130 interrupted.
"""
import argparse
import os
import sys

import numpy as np

from util.io.atomic import check_writable
from util.now.align import UNIT_TO_MM
from util.now.evaluate import evaluate
from util.now.files import CHALLENGES, NowFormatError, image_list_path, read_image_list
from util.now.metrics import results_csv, results_json, summarize
from util.now.plot import cumulative_error_png
from util.now.results import (RESULTS, find_results, read_all_distances, write_bytes,
                              write_record)
from util.errors import one_line, printable
from util.pipeline.progress import Progress, wants_bar

TEST_REFUSED = ("--split test: NoW's test-set scans are not public; the organisers score "
                "test-set predictions sent to them (see the NoW website). --check validates "
                "them before you send them")


class UsageError(ValueError):
    """A command line that cannot start; the message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parser():
    p = _Parser(prog='python -m now_evaluation', description=__doc__.split('\n')[0])
    p.add_argument('--predictions', required=True, metavar='PRED',
                   help='folder of predictions in NoW\'s layout (results go to PRED/results)')
    p.add_argument('--dataset', required=True, metavar='NOW',
                   help='the NoW dataset folder (image lists, NoW_Dataset/, scans/, '
                        'scans_lmks_onlypp/)')
    p.add_argument('--split', choices=('val', 'test'), default='val')
    p.add_argument('--metrical', action='store_true',
                   help='metrical protocol: rotation and translation only (needs --unit)')
    p.add_argument('--unit', choices=sorted(UNIT_TO_MM),
                   help="the predictions' unit, for --metrical (the scans are in mm)")
    p.add_argument('--check', action='store_true',
                   help='only validate the predictions (counts, shapes, files that do not load)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                   help='processes (default: one per core)')
    p.add_argument('--compare', nargs='+', action='extend', default=[], metavar='LABEL=DIR',
                   help='earlier results folders to draw on the same cumulative error plot')
    return p


def parse_args(argv):
    """argv (without the program) -> argparse.Namespace, with ``compare`` as [(label, results
    folder)]; UsageError for any combination that cannot run."""
    args = parser().parse_args(argv)
    if args.metrical and args.unit is None:
        raise UsageError("--metrical needs --unit (the predictions' unit: mm, cm or m)")
    if args.unit is not None and not args.metrical:
        raise UsageError('--unit applies only with --metrical')
    if args.workers < 1:
        raise UsageError('--workers must be at least 1')
    if args.split == 'test' and not args.check:
        raise UsageError(TEST_REFUSED)
    compare = []
    for item in args.compare:
        label, sep, folder = item.partition('=')
        if not sep or not label or not folder:
            raise UsageError('--compare %s: expected LABEL=RESULTS_DIR' % item)
        found = find_results(folder)
        if found is None:
            raise UsageError('--compare %s: %s holds no distances/ (nor results/distances/)'
                             % (item, folder))
        compare.append((label, found))
    args.compare = compare
    if not os.path.isdir(args.predictions):
        raise UsageError('%s: no such folder (--predictions)' % args.predictions)
    if not os.path.isdir(args.dataset):
        raise UsageError('%s: no such folder (--dataset)' % args.dataset)
    return args


def table(summary):
    """The results as aligned text lines (millimetres)."""
    lines = ['%-22s %6s %7s %7s %7s %7s' % ('challenge', 'images', 'missing', 'median', 'mean',
                                           'std')]
    for name, block in summary.items():
        stats = ['%7.3f' % block[k] if block[k] is not None else '%7s' % '-'
                 for k in ('median', 'mean', 'std')]
        lines.append('%-22s %6d %7d %s' % (name, block['images'], block['missing'],
                                          ' '.join(stats)))
    return lines


def run(args, out, err):
    """Evaluate (or check) -> exit status."""
    entries = read_image_list(image_list_path(args.dataset, args.split))
    if not entries:
        raise NowFormatError('%s: the image list is empty' % image_list_path(args.dataset,
                                                                             args.split))
    results_dir = os.path.join(args.predictions, RESULTS)
    if not args.check:
        check_writable(results_dir)
    scale = UNIT_TO_MM[args.unit] if args.metrical else None
    problems = []
    with Progress(len(entries), err, wants_bar(err)) as progress:
        def on_record(record):
            if record.problem:
                problems.append(record.problem)
                print('missing: %s' % printable(record.problem), file=progress.stream)
            if not args.check:
                write_record(results_dir, record)
            progress.update()

        records = evaluate(args.dataset, args.predictions, entries, scale, args.workers,
                           on_record, check_only=args.check)
    if args.check:
        print('%d of %d predictions usable, %d missing or broken (%s split)'
              % (len(entries) - len(problems), len(entries), len(problems), args.split),
              file=out)
        return 1 if problems else 0
    summary = summarize([(r.entry.challenge, r.distances) for r in records], CHALLENGES)
    write_bytes(os.path.join(results_dir, 'results.json'), results_json(summary))
    write_bytes(os.path.join(results_dir, 'results.csv'), results_csv(summary))
    label = os.path.basename(os.path.abspath(args.predictions)) or 'predictions'
    evaluated = [r.distances for r in records if r.distances is not None]
    curves = [(label, np.concatenate(evaluated) if evaluated else np.zeros(0))]
    curves += [(name, read_all_distances(folder)) for name, folder in args.compare]
    curves = [('%s (median %.2f mm)' % (name, np.median(d)) if len(d) else name, d)
              for name, d in curves]
    write_bytes(os.path.join(results_dir, 'cumulative_error.png'),
                cumulative_error_png(curves, title='NoW %s%s' % (
                    args.split, ', metrical' if args.metrical else '')))
    for line in table(summary):
        print(line, file=out)
    print('errors in mm; results in %s' % printable(results_dir), file=out)
    return 1 if problems else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
        return run(args, sys.stdout, sys.stderr)
    except UsageError as exc:
        print('error: %s (see --help)' % printable(str(exc)), file=sys.stderr)
        return 2
    except (NowFormatError, OSError, ValueError) as exc:
        print('error: %s' % printable(one_line(exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
