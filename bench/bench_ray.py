"""--engine=ray vs --engine=local on this one machine: steady images per second and start-up.

    python -m bench.bench_ray [--n 256] [--rounds 1]

Writes --n and 2x--n JPEGs of 640x480 (the sample face, resized, moved, lit and noised a little
differently in each, on a blurred copy of itself) and runs the command
(``python -m demo --demo --backend=tf``, default outputs: the 4-panel PNG per image) as a new
process on a folder of 1, N and 2N of them, for each configuration:

- local: the default engine, TensorFlow's default threads;
- ray, 1 worker, --ray_cpus_per_worker=2, TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=1;
- ray, 2 workers, --ray_cpus_per_worker=1, TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1;
- ray, 2 workers, --ray_cpus_per_worker=1, TensorFlow's default threads (what the product
  does: docs/formats.md §15 "Threads").

The thread limits are set in the environment of the command; the Ray it starts passes that
environment on to its workers, and a probe reads it back from /proc/<pid>/environ of every
worker process (ray::MapWorker(MapBatches(RingNetWorker))) while the run goes, with the
worker's thread count and resident memory. --backend=tf is given so that a cached ONNX
conversion (which --backend=auto would pick, and which ignores TF_NUM_*) cannot change what is
measured. RAY_ADDRESS is removed from the environment: each Ray run starts its own
one-machine Ray, as the command does without it.

Steady images per second = N / (wall(2N) - wall(N)): start-up (imports, Ray, model load, the
first image's graph optimisation) cancels. Each wall time is the best of --rounds (the 1-image
runs: one round). Start-up = 2 wall(N) - wall(2N), the intercept of the N/2N line; the 1-image
wall time is shown beside it. Asserts nothing but that every run did every input.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
WIDTH, HEIGHT = 640, 480
WORKER_TITLE = b'RingNetWorker'  # in the process title Ray gives the Ray Data actors
THREAD_VARS = ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS')
# (label, engine, workers, cpus per worker, TF intra-op threads per worker or None: default)
CONFIGS = [
    ('local', 'local', 1, None, None),
    ('ray', 'ray', 1, 2, 2),
    ('ray', 'ray', 2, 1, 1),
    ('ray', 'ray', 2, 1, None),
]
NODES, CORES_PER_NODE = 10, 16


def write_images(folder, n):
    """n JPEGs (WIDTH x HEIGHT) in folder, 0000.jpg ...: small variations of the sample face."""
    import cv2
    sys.path.insert(0, ROOT)
    from util.io.image_io import load_image
    face = load_image(IMAGE)
    background = cv2.GaussianBlur(cv2.resize(face, (WIDTH, HEIGHT)), (0, 0), 15)
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    for k in range(n):
        side = int(rng.integers(430, HEIGHT))
        x, y = int(rng.integers(0, WIDTH - side)), int(rng.integers(0, HEIGHT - side + 1))
        image = background.copy()
        image[y:y + side, x:x + side] = cv2.resize(face, (side, side),
                                                   interpolation=cv2.INTER_CUBIC)
        image = image * rng.uniform(0.9, 1.1) + rng.normal(0, 2, image.shape)
        image = np.clip(image, 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, '%04d.jpg' % k), np.ascontiguousarray(image[..., ::-1]),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])


def subset(folder, source, n):
    """folder with hard links (copies where links fail) to the first n images of source."""
    os.makedirs(folder)
    for name in sorted(os.listdir(source))[:n]:
        try:
            os.link(os.path.join(source, name), os.path.join(folder, name))
        except OSError:
            shutil.copy(os.path.join(source, name), os.path.join(folder, name))


class WorkerProbe:
    """Polls while a run goes: every 0.1 s the PNGs in images/ (-> ``counts``, [(seconds,
    count)] at each change), every 0.5 s /proc: for every Ray Data worker process of the run
    (-> ``seen``, {pid: record}) its THREAD_VARS, most threads and most resident memory."""

    def __init__(self, images, interval=0.1, proc_every=5):
        self.images, self.interval, self.proc_every = images, interval, proc_every
        self.seen, self.counts, self._stop = {}, [], threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.start = time.perf_counter()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _poll(self):
        tick = 0
        while not self._stop.is_set():
            self._count()
            if tick % self.proc_every == 0:
                for pid in os.listdir('/proc'):
                    if pid.isdigit():
                        self._look(pid)
            tick += 1
            self._stop.wait(self.interval)
        self._count()

    def _count(self):
        try:
            count = sum(name.endswith('.png') and not name.startswith('.')
                        for name in os.listdir(self.images))
        except OSError:
            count = 0
        if not self.counts or count != self.counts[-1][1]:
            self.counts.append((time.perf_counter() - self.start, count))

    def first(self):
        """Seconds from the start to the first output."""
        return next((t for t, k in self.counts if k), float('nan'))

    def last(self):
        """Seconds from the start to the last output."""
        return next((t for t, k in self.counts if k and k == self.counts[-1][1]), float('nan'))

    def in_run_rate(self, share=0.25):
        """Images per second from the time ``share`` of the outputs were there to the last."""
        total = self.counts[-1][1]
        t0, k0 = next((t, k) for t, k in self.counts if k >= share * total)
        t1 = next(t for t, k in self.counts if k == total)
        return (total - k0) / (t1 - t0) if t1 > t0 else float('nan')

    def _look(self, pid):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as fh:
                if WORKER_TITLE not in fh.read():
                    return
            with open('/proc/%s/environ' % pid, 'rb') as fh:
                env = dict(item.split(b'=', 1) for item in fh.read().split(b'\0') if b'=' in item)
            threads = len(os.listdir('/proc/%s/task' % pid))
            with open('/proc/%s/status' % pid) as fh:
                rss = next((int(line.split()[1]) * 1024 for line in fh
                            if line.startswith('VmRSS:')), 0)
        except (OSError, StopIteration):
            return
        record = self.seen.setdefault(pid, {'threads': 0, 'rss': 0})
        record['env'] = tuple(env.get(v.encode(), b'-').decode() for v in THREAD_VARS)
        record['threads'] = max(record['threads'], threads)
        record['rss'] = max(record['rss'], rss)


def ray_processes(ignore=()):
    """pids of Ray's processes on this machine (raylet, GCS, workers, agents), less ignore."""
    found = set()
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if cmdline.startswith(b'ray::') or any(
                name in cmdline for name in (b'raylet', b'gcs_server', b'default_worker.py',
                                             b'ray/dashboard', b'ray/autoscaler')):
            found.add(pid)
    return found - set(ignore)


def run_cli(config, folder, n, work, others=()):
    """Wall seconds of the command on folder (n images), its WorkerProbe, and the seconds
    Ray's processes stayed after it returned (the next run starts when they are gone, 60 s at
    most; ``others``: Ray processes that were there before the bench)."""
    label, engine, workers, cpus, threads = config
    out = tempfile.mkdtemp(prefix='out_', dir=work)
    cmd = [sys.executable, '-m', 'demo', '--demo', '--backend=tf', '--img_path', folder,
           '--out_folder', out]
    if engine == 'ray':
        cmd += ['--engine=ray', '--ray_workers=%d' % workers, '--ray_cpus_per_worker=%d' % cpus]
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS + ('RAY_ADDRESS',)}
    env['TF_CPP_MIN_LOG_LEVEL'] = '2'
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS='1')
    with WorkerProbe(os.path.join(out, 'images')) as probe:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    with open(os.path.join(out, 'manifest.jsonl')) as fh:
        ok = sum('"status": "ok"' in line for line in fh)
    pngs = len(os.listdir(os.path.join(out, 'images'))) if os.path.isdir(
        os.path.join(out, 'images')) else 0
    if done.returncode or ok != n or pngs != n:
        sys.exit('%s %s on %d images: rc %d, %d ok, %d PNGs\n%s'
                 % (label, workers, n, done.returncode, ok, pngs, done.stderr[-3000:]))
    shutil.rmtree(out)
    start = time.perf_counter()
    while ray_processes(others) and time.perf_counter() - start < 60:
        time.sleep(0.1)
    return wall, probe, time.perf_counter() - start


def threads_text(config):
    label, engine, workers, cpus, threads = config
    return str(threads) if threads else 'default'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=256, help='images in the small folder (the '
                        'large one has twice as many)')
    parser.add_argument('--rounds', type=int, default=1, help='N and 2N runs per '
                        'configuration: the best wall time of each is used')
    parser.add_argument('--keep', action='store_true', help='keep the work folder')
    args = parser.parse_args(argv)
    n = args.n
    began = time.perf_counter()

    work = tempfile.mkdtemp(prefix='ringnet_bench_ray_')
    folders = {2 * n: os.path.join(work, 'in_%d' % (2 * n))}
    write_images(folders[2 * n], 2 * n)
    for k in (1, n):
        folders[k] = os.path.join(work, 'in_%d' % k)
        subset(folders[k], folders[2 * n], k)
    print('%d cores; %d JPEGs of %dx%d; CLI runs of 1, %d and %d images; best of %d rounds '
          'for N and 2N' % (os.cpu_count(), 2 * n, WIDTH, HEIGHT, n, 2 * n, args.rounds),
          flush=True)

    # untimed: demo assets generated or cached, files in the page cache
    others = ray_processes()
    if others:
        print('note: %d Ray processes were running before the bench' % len(others))
    run_cli(CONFIGS[0], folders[1], 1, work)

    walls = {(c, k): [] for c in range(len(CONFIGS)) for k in (1, n, 2 * n)}
    probes = {(c, k): [] for c in range(len(CONFIGS)) for k in (1, n, 2 * n)}
    lingers = []
    plan = [(c, 1) for c in range(len(CONFIGS))] + [
        (c, k) for _ in range(args.rounds) for c in range(len(CONFIGS)) for k in (n, 2 * n)]
    for c, k in plan:
        wall, probe, linger = run_cli(CONFIGS[c], folders[k], k, work, others)
        walls[c, k].append(wall)
        probes[c, k].append(probe)
        lingers.append(linger)
        print('  %-5s workers=%d threads=%-7s %4d images: %6.2f s (first PNG at %.2f s, last '
              'at %.2f s)' % (CONFIGS[c][0], CONFIGS[c][2], threads_text(CONFIGS[c]), k, wall,
                             probe.first(), probe.last()), flush=True)

    rows = []
    for c, config in enumerate(CONFIGS):
        small, large = min(walls[c, n]), min(walls[c, 2 * n])
        rows.append({'rate': n / (large - small), 'intercept': 2 * small - large,
                     'one': min(walls[c, 1]),
                     'in_run': max(p.in_run_rate() for p in probes[c, 2 * n]),
                     'probes': [p for k in (1, n, 2 * n) for p in probes[c, k]]})
        rows[-1]['first'] = min(p.first() for p in rows[-1]['probes'])
    local = rows[0]

    print()
    head = '%-6s %7s %8s %9s %8s %9s %8s %11s %8s %9s %9s'
    print(head % ('engine', 'workers', 'threads/', 'steady', 'ratio', 'in-run', 'ratio',
                  'start-up s', '1 image', '1 image -', 'first'))
    print(head % ('', '', 'worker', 'images/s', 'to local', 'images/s', 'to local',
                  '(intercept)', 'wall s', 'local s', 'PNG at s'))
    for config, row in zip(CONFIGS, rows):
        print('%-6s %7d %8s %9.2f %7.2fx %9.2f %7.2fx %11.2f %8.2f %9s %9.2f'
              % (config[0], config[2], threads_text(config), row['rate'],
                 row['rate'] / local['rate'], row['in_run'], row['in_run'] / local['in_run'],
                 row['intercept'], row['one'],
                 '-' if config[1] == 'local' else '%+.2f' % (row['one'] - local['one']),
                 row['first']))
    print('steady = N / (wall(2N) - wall(N)), best wall of each; in-run = PNGs per second '
          'inside the 2N run, from a quarter of them written to the last (best run); '
          'start-up = 2 wall(N) - wall(2N); first PNG = earliest over all runs')
    print('Ray processes stayed after the command returned: at most %.1f s (each run waits '
          'for them to go)' % max(lingers))

    print()
    print('Ray Data worker processes (ray::MapWorker(MapBatches(RingNetWorker))) read in /proc '
          'during every run of the configuration:')
    for config, row in zip(CONFIGS, rows):
        if config[1] != 'ray':
            continue
        records = [r for p in row['probes'] for r in p.seen.values()]
        envs = sorted({r['env'] for r in records if 'env' in r})
        per_run = sorted({len(p.seen) for p in row['probes']})
        print('  workers=%d threads=%-7s: processes per run %s; %s = %s; most threads in one '
              'worker %d; most resident memory in one %.2f GB'
              % (config[2], threads_text(config), per_run, '/'.join(THREAD_VARS),
                 ', '.join('/'.join(e) for e in envs) or 'never seen',
                 max((r['threads'] for r in records), default=0),
                 max((r['rss'] for r in records), default=0) / 1e9))

    ray_rows = [(config, row) for config, row in zip(CONFIGS, rows) if config[1] == 'ray']
    best_config, best = max(ray_rows, key=lambda cr: cr[1]['rate'])
    product = rows[3]
    goal = 0.9
    print()
    print("goal: Ray's steady-state throughput on one machine >= %.1fx local" % goal)
    print('  best Ray (workers=%d, threads %s): %.2fx -> %s'
          % (best_config[2], threads_text(best_config), best['rate'] / local['rate'],
             'met' if best['rate'] >= goal * local['rate'] else 'NOT met'))
    print('  product default (workers=2, default threads): %.2fx -> %s'
          % (product['rate'] / local['rate'],
             'met' if product['rate'] >= goal * local['rate'] else 'NOT met'))

    per_worker = rows[2]['rate'] / 2
    workers = NODES * CORES_PER_NODE
    rss = max((r['rss'] for p in rows[2]['probes'] for r in p.seen.values()), default=0) / 1e9
    print()
    print('ESTIMATE ON PAPER, not measured: %d nodes x %d cores, %d workers per node at '
          '--ray_cpus_per_worker=1 with TF_NUM_INTRAOP_THREADS=1 (%d workers)'
          % (NODES, CORES_PER_NODE, CORES_PER_NODE, workers))
    print('  per-worker figure here: %.2f images/s (the 2-worker, 1-thread steady rate / 2: '
          'one core each, sharing this machine with the driver and Ray)' % per_worker)
    print('  estimate: %d x %.2f = %.0f images/s (%.0fx this machine\'s local engine)'
          % (workers, per_worker, workers * per_worker, workers * per_worker / local['rate']))
    print('  assumes: per-worker throughput scales like this machine\'s 1-core worker (each '
          'core there as fast as one here, no memory-bandwidth or cache loss at 16 workers per '
          'node); the driver, object store and shared output file system keep up; memory: '
          '%.1f GB resident per worker x 16 = %.0f GB per node; start-up (%.0f s here) not '
          'counted' % (rss, 16 * rss, rows[2]['intercept']))

    print()
    print('bench wall time: %.0f s' % (time.perf_counter() - began))
    if args.keep:
        print('work folder kept: %s' % work)
    else:
        shutil.rmtree(work)

if __name__ == '__main__':
    main()
