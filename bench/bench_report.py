"""The run report: first paint of OUT/report.html in headless Chromium for a 10,000-row run,
and what building the report costs per row.

    python -m bench.bench_report [--rows 10000] [--distinct 100] [--rounds 3]

One real run (``python -m demo --demo`` on input_images/000001.jpg with every output) gives
the files of one row. Then:

- build: --distinct rows, each with its own copy of those files (so every mesh is read and
  every view written: nothing shared but the FLAME topology), through
  util.outputs.report.report_files and util.io.atomic.write_files; ms per row, and the same
  again with the previous report in place (--skip_existing's case: views kept);
- first paint: a report of --rows rows (every 7th failed) whose records all name that one
  row's files (what the first page draws is the same as with distinct files; the build is
  the part above), opened from file:// in Debian's chromium through Playwright: the first
  contentful paint and the load event, from navigation start, best of --rounds fresh pages;
  the same for a 50-row report (one page) as the reference. Goal: under 2 s for 10,000 rows.

Asserts nothing but that the pages drew their rows.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
FLAGS = ['--save_obj_file=True', '--save_flame_parameters=True',
         '--neutralize_expression=True', '--save_texture=True']
CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader']


def one_run(folder):
    """OUT of one --demo run with every output -> its manifest record."""
    out = os.path.join(folder, 'run')
    subprocess.run([sys.executable, '-m', 'demo', '--demo', '--img_path', IMAGE,
                    '--out_folder', out, '--noreport'] + FLAGS, cwd=ROOT, check=True,
                   capture_output=True)
    with open(os.path.join(out, 'manifest.jsonl')) as fh:
        return out, json.loads(fh.readline())


def copies(run, record, folder, n):
    """n rows, each with its own copy of the run's files (NAME 000001 -> r00000 ...)."""
    records = []
    for k in range(n):
        name = 'r%05d' % k
        outputs = []
        for rel in record['outputs']:
            new = rel.replace('000001', name)
            os.makedirs(os.path.dirname(os.path.join(folder, new)), exist_ok=True)
            shutil.copyfile(os.path.join(run, rel), os.path.join(folder, new))
            outputs.append(new)
        if any(p.endswith('.mtl') for p in outputs):  # the MTL names its texture
            mtl = next(p for p in outputs if p.endswith('.mtl'))
            with open(os.path.join(folder, mtl), 'w') as fh:
                fh.write(open(os.path.join(run, 'texture', '000001.mtl')).read()
                         .replace('000001', name))
        records.append(dict(record, input='in/%s.jpg' % name, outputs=outputs))
    return records


def build(records, folder):
    """Write the report of ``records`` into ``folder`` -> (seconds, files written)."""
    from util.io.atomic import write_files
    from util.outputs.report import report_files
    start = time.perf_counter()
    written = write_files(folder, report_files(records, {'inputs': len(records),
                                                         'seconds': 1.0}, folder),
                          prune=['report'])
    return time.perf_counter() - start, written


def first_paint(browser, folder, rounds):
    """Best (first contentful paint, load event) in seconds of ``rounds`` fresh pages."""
    best = None
    url = 'file://' + os.path.abspath(os.path.join(folder, 'report.html'))
    for _ in range(rounds):
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        page.goto(url)
        page.wait_for_load_state('load')
        page.wait_for_function('() => performance.getEntriesByName("first-contentful-paint")'
                               '.length > 0')
        fcp, load, rows = page.evaluate(
            '() => [performance.getEntriesByName("first-contentful-paint")[0].startTime,'
            ' performance.getEntriesByType("navigation")[0].loadEventEnd,'
            ' document.querySelectorAll("article.row").length]')
        page.close()
        assert rows > 0
        got = (fcp / 1000.0, load / 1000.0)
        best = got if best is None or got[0] < best[0] else best
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', type=int, default=10000)
    parser.add_argument('--distinct', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        run, record = one_run(tmp)
        distinct = os.path.join(tmp, 'distinct')
        records = copies(run, record, distinct, args.distinct)
        seconds, written = build(records, distinct)
        again, kept = build(records, distinct)
        size = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, names in os.walk(os.path.join(distinct, 'report')) for f in names)
        print('build, %d rows with their own files: %.1f ms per row (%d files, %.0f KB per '
              'row); again with that report in place: %.1f ms per row (%d files written)'
              % (args.distinct, 1000 * seconds / args.distinct, written,
                 size / 1024 / args.distinct, 1000 * again / args.distinct, kept))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for n in (50, args.rows):
                rows = [dict(record, input='in/%05d.jpg' % k,
                             status='failed' if k % 7 == 3 else 'ok',
                             error='in/%05d.jpg: not an image' % k if k % 7 == 3 else None,
                             outputs=[] if k % 7 == 3 else record['outputs'])
                        for k in range(n)]
                t, _ = build(rows, run)
                fcp, load = first_paint(browser, run, args.rounds)
                print('%6d rows: report built in %5.1f s; first contentful paint %.3f s, load '
                      'event %.3f s (best of %d)' % (n, t, fcp, load, args.rounds))
            browser.close()


if __name__ == '__main__':
    main()
