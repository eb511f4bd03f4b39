"""--engine=ray: the same run on a Ray cluster, through Ray Data (docs/formats.md §15).

The driver (the command's process) lists the inputs exactly as the local engine does and makes
a Ray Dataset of small rows (index, path, NAME, error, clash). ``map_batches`` runs the rows on
a pool of actors (RingNetWorker): each loads the model once, from files shipped through the
object store and kept on its machine by content (util.io.shipped), and runs the local Pipeline
on its rows, writing their outputs itself, all or nothing per input (util.io.atomic.Staging).
Only manifest lines come back, each as soon as its input is done; the driver appends them to
OUT/manifest.jsonl as they arrive, so an interrupted job keeps the rows that came back.
Images never pass through the driver. Ray is imported here only, and only for this engine.
"""
import collections
import contextlib
import io
import json
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
import types

from util import ROOT
from util.errors import one_line
from util.io.cache import default_cache_dir
from util.io.checkpoint_files import checkpoint_paths
from util.io.no_follow import create_file, open_folder
from util.io.shipped import file_digest, local_files
from util.model.backend import backend_model_file, load_backend
from util.model.conversion_cache import onnx_backend_of
from util.model.choices import TF_LABEL
from util.pipeline.inputs import Entry
from util.pipeline.manifest import manifest_line
from util.pipeline.model_files import FLAME_FILE_KEYS
from util.pipeline.now_inputs import is_now_run, now_work_items
from util.pipeline.reading import work_items
from util.pipeline.runner import Pipeline, RunResult

# the code goes to the workers as Ray's working_dir; not the licensed files or the tests
CODE_EXCLUDES = ['/model', '/flame_model', '/tests', '/bench', '/docs',
                 '/RingNet_output', '__pycache__', '*.pyc']
ROWS_PER_BATCH = 8  # inputs per actor call: enough to overlap writing with the next network
# run; a worker that dies redoes at most this many (same names, same bytes)
STOP_FILE = '.ringnet-stop'  # in OUT: the driver was interrupted; workers write nothing more
DRAIN_SECONDS = 60  # after an interrupt, how long the driver waits for the rows in flight
FILE_FLAGS = FLAME_FILE_KEYS + ('template_mesh',)  # the files besides the checkpoint


class RayUnavailable(OSError):
    """Ray is not installed, or the cluster cannot be started or joined (one line)."""


def model_file_groups(files, template_mesh=''):
    """{key: [paths]} of the model files a run reads: the checkpoint's .meta, .index and data
    shards under 'load_path' (a group: they must sit side by side), and each FLAME file (and
    the template mesh) that exists."""
    groups = {'load_path': checkpoint_paths(files['load_path'])}
    paths = dict(files, template_mesh=template_mesh)
    groups.update((key, [paths[key]]) for key in FILE_FLAGS
                  if paths.get(key) and os.path.isfile(paths[key]))
    return groups


def plain_config(config):
    """absl flags -> a SimpleNamespace of their values (what a worker gets: picklable)."""
    return types.SimpleNamespace(**{name: config[name].value for name in config})


class RingNetWorker:
    """A Ray Data actor: the model, loaded once; __call__ runs a batch of input rows.

    config: plain_config of the run (``onnx_record``: the record of the shipped ONNX model,
    None when the workers run TensorFlow); shipped: {key: [(path, digest, ObjectRef of the
    bytes)]} (the refs sit inside lists, so Ray does not fetch them before they are needed;
    'onnx_model': the driver's verified conversion); out_folder: absolute, or a path every
    machine sees.
    """

    def __init__(self, config, shipped, out_folder):
        import ray
        cache_dir = default_cache_dir()
        local = {}
        for key, parts in shipped.items():
            paths, digests, refs = zip(*parts)
            local[key] = local_files(paths, digests, lambda k, refs=refs: ray.get(refs[k]),
                                     cache_dir)
        config = types.SimpleNamespace(**vars(config))
        config.load_path = local['load_path'][0][:-len('.meta')]
        for key in FILE_FLAGS:
            if key in local:
                setattr(config, key, local[key][0])
        files = {key: getattr(config, key) for key in ('load_path',) + FLAME_FILE_KEYS}
        self.config, self.out_folder = config, out_folder
        backend = (onnx_backend_of(local['onnx_model'][0], config.onnx_record)
                   if 'onnx_model' in local else
                   load_backend(files['load_path'], config.batch_size, 'tf',
                                say=lambda line: None))
        self.pipeline = Pipeline(config, files, backend)

    def __call__(self, batch):
        """{'index', 'path', 'name', 'error', 'clash'} arrays -> yields {'index', 'line'} of
        one input at a time (its manifest line, JSON text), the moment its outputs are
        written: Ray streams each to the driver without waiting for the batch. The pipeline
        runs on a thread of its own meanwhile (the network on the next input overlaps the
        writing, as in the local engine)."""
        entries = [Entry(str(p), str(n), str(e) or None)
                   for p, n, e in zip(batch['path'], batch['name'], batch['error'])]
        clashes = {k: Entry(str(other), '') for k, other in enumerate(batch['clash']) if other}
        items = (now_work_items(entries, self.config, clashes) if is_now_run(self.config)
                 else work_items(entries, self.config, clashes))
        lines, failure = queue.Queue(), []

        def run():
            try:
                self.pipeline.run(items, self.out_folder, err=io.StringIO(),
                                  manifest=LineCollector(lines), stop=self._stopped)
            except BaseException as e:  # noqa: BLE001 - raised below, on Ray's thread
                failure.append(e)
            finally:
                lines.put(None)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        done = 0
        for line in iter(lines.get, None):  # the pipeline appends them in the batch's order
            yield {'index': [batch['index'][done]], 'line': [line]}
            done += 1
        thread.join()
        if failure:
            raise failure[0]
        if done != len(entries) and not self._stopped():  # Ray runs the batch again
            raise RuntimeError('a worker stopped before finishing its batch')

    def _stopped(self):
        """Has the driver been interrupted (STOP_FILE in the output folder)?"""
        return os.path.lexists(os.path.join(self.out_folder, STOP_FILE))


class LineCollector:
    """Stands in for util.pipeline.manifest.Manifest in a worker: hands each line on."""

    def __init__(self, lines):
        self.lines = lines  # queue.Queue

    def append(self, *args, **kwargs):
        self.lines.put(manifest_line(*args, **kwargs))


def ship(groups, cache_dir=None):
    """{key: [paths]} -> {key: [(path, digest, ObjectRef)]}: each file's bytes put in the
    object store once (the driver reads them; the workers fetch them only where their
    machine lacks the file)."""
    import ray
    cache_dir = cache_dir or default_cache_dir()
    shipped = {}
    for key, paths in groups.items():
        shipped[key] = []
        for path in paths:
            with open(path, 'rb') as fh:
                shipped[key].append((os.path.abspath(path), file_digest(path, cache_dir),
                                     ray.put(fh.read())))
    return shipped


AUTH_HINT = ('if the cluster was started by `ray start` of Ray 2.59 or later (token '
             'authentication), set RAY_AUTH_MODE=token (the token is read from RAY_AUTH_TOKEN '
             'or ~/.ray/auth_token) and run again')


def ray_address(flag, environ):
    """--ray_address ``flag`` and the environment -> the address for ray.init: the flag, else
    $RAY_ADDRESS, else 'local': a Ray started by this run (never one left running, nor the
    stale address file of one that is gone; ray.init(None) would take those)."""
    return flag or environ.get('RAY_ADDRESS') or 'local'


def check_reachable(address, timeout=5.0):
    """Raise RayUnavailable (one line saying what to do) when ``address`` cannot be joined:
    a 'host:port' or 'ray://host:port' that does not accept a connection within ``timeout``
    seconds (ray.init would retry it for minutes); 'auto' when no cluster was started on this
    machine, or the one its address file names does not answer. 'local' starts one."""
    if address == 'local':
        return
    shown = address
    if address == 'auto':  # Ray's own convention: $RAY_ADDRESS, else this machine's last
        try:
            from ray._private.services import canonicalize_bootstrap_address
            address = canonicalize_bootstrap_address('auto')
        except ConnectionError:
            raise RayUnavailable('--ray_address=auto: no Ray cluster runs on this machine; '
                                 'start one with `ray start --head`, or leave --ray_address '
                                 'empty to start Ray for this run') from None
        except (ImportError, AttributeError):  # another Ray version: let ray.init look
            return
        shown = 'auto (%s)' % address
    match = re.fullmatch(r'(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?', address or '')
    if match:
        try:
            with socket.create_connection((match.group(1), int(match.group(2))), timeout):
                pass
        except OSError as e:
            raise RayUnavailable('cannot join Ray at %s: it does not answer (%s); check the '
                                 'address and that the cluster is up%s'
                                 % (shown, e.strerror or one_line(e),
                                    ', or leave --ray_address empty to start Ray for this run'
                                    if shown.startswith('auto') else '')) from None


def init_ray(address, runtime_env):
    """ray.init(address) -> None, or RayUnavailable in one line saying what to do (an
    address that refuses to authenticate us fails in about 20 s: Ray's own retries)."""
    import ray
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False,
                 logging_level=logging.ERROR, runtime_env=runtime_env)
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds; the user gets one line
        if address == 'local':
            raise RayUnavailable('cannot start Ray on this machine: %s'
                                 % one_line(e, last=True)) from None
        hint = '' if os.environ.get('RAY_AUTH_MODE') == 'token' else '; ' + AUTH_HINT
        raise RayUnavailable('cannot join Ray at %s: %s%s'
                             % (address, one_line(e, last=True), hint)) from None


def worker_environment(threads=0):
    """Environment of the workers: TensorFlow quiet, and with ``threads`` > 0 that many
    intra-op threads (0: TensorFlow's default, one per core, as the local engine: the split
    of a sum over threads changes its last bits, so only that gives the same bytes)."""
    env = {'TF_CPP_MIN_LOG_LEVEL': '2'}
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS='1')
    return env


def worker_count(config):
    """--ray_workers, or (0) as many as the cluster's CPUs hold at --ray_cpus_per_worker."""
    import ray
    if config.ray_workers:
        return config.ray_workers
    cpus = ray.cluster_resources().get('CPU', 1)
    return max(1, int(cpus // config.ray_cpus_per_worker))


def run_ray(config, entries, refused, files, out_folder, manifest, err, progress=False):
    """Run ``entries`` ([Entry]; refused: {index: earlier Entry} of name clashes) on Ray ->
    (RunResult, the backend's label); RayUnavailable when Ray is missing or cannot be reached
    (see ray_address). The driver converts the checkpoint first (util.model.backend
    .backend_model_file; once, TensorFlow in a child process) and ships the verified model
    with the other files; the workers then never import TensorFlow. Lines go to ``manifest``
    (util.pipeline.manifest.Manifest) as the inputs finish; each failed input's error line (and
    a clip's note) is printed on ``err``. The job stops when the manifest cannot take a line.
    ``progress``: show Ray Data's progress bar."""
    # Ray's own notices stay off the terminal (its C++ log level is read when it starts);
    # failures still come back as one line per input, or one for the job
    os.environ.setdefault('RAY_BACKEND_LOG_LEVEL', 'fatal')
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise RayUnavailable('--engine=ray needs Ray (%s): pip install -r requirements-ray.txt'
                             % e) from None
    logging.getLogger('ray.data').setLevel(logging.ERROR)
    counts, interrupted = collections.Counter(), False
    stop = StopFile(out_folder)
    groups = model_file_groups(files, config.template_mesh)
    model = backend_model_file(files['load_path'], config.backend, config.precision,
                               say=lambda line: print(line, file=err))
    worker_config = plain_config(config)
    worker_config.onnx_record = model[1] if model else None
    if model:
        groups['onnx_model'] = [model[0]]
    label = ('ONNX Runtime %s' % model[1]['precision']) if model else TF_LABEL
    try:
        init_ray(ray_address(config.ray_address, os.environ),
                 {'working_dir': ROOT, 'excludes': CODE_EXCLUDES,
                  'env_vars': worker_environment(config.ray_threads)})
    except KeyboardInterrupt:
        ray.shutdown()
        return RunResult(0, 0, True), label
    try:
        context = ray.data.DataContext.get_current()
        # rows come back as inputs finish: no waiting behind a slower earlier batch, and each
        # yielded line its own block (Ray Data would otherwise gather a call's yields into
        # blocks of up to 128 MB, sent when the call ends)
        context.execution_options.preserve_order = False
        context.target_max_block_size = 1
        context.enable_progress_bars = progress
        rows = [{'index': k, 'path': os.path.abspath(e.path), 'name': e.name,
                 'error': e.error or '',
                 'clash': os.path.abspath(refused[k].path) if k in refused else ''}
                for k, e in enumerate(entries)]
        dataset = ray.data.from_items(rows).map_batches(
            RingNetWorker, batch_size=max(ROWS_PER_BATCH, config.batch_size),
            batch_format='numpy',
            fn_constructor_kwargs={'config': worker_config, 'shipped': ship(groups),
                                   'out_folder': os.path.abspath(out_folder)},
            compute=ray.data.ActorPoolStrategy(size=worker_count(config)),
            num_cpus=config.ray_cpus_per_worker)
        batches = pumped(dataset.iter_batches(batch_size=None, batch_format='numpy'))
        seen = set()  # a retried task (its worker died) may send a row again
        deadline = None
        while deadline is None or time.monotonic() < deadline:
            try:
                kind, batch = batches.get(timeout=0.2)
                if kind == 'end':
                    break
                if kind == 'error':
                    raise batch
                with signals_held():  # a row is written and counted whole, or not at all
                    take_rows(batch, seen, manifest, counts, err)
                if getattr(manifest, 'error', None):  # it cannot take more lines: stop
                    break
            except queue.Empty:
                continue
            except KeyboardInterrupt:  # (only the first signal raises: see StopSignals)
                # workers start nothing more; the rows of what they already wrote still come
                interrupted = True
                stop.request()
                deadline = time.monotonic() + DRAIN_SECONDS
    except KeyboardInterrupt:  # while setting the job up: no row has come yet
        interrupted = True
    except Exception as e:  # noqa: BLE001 - a job that cannot go on: one line, the rows done stand
        print('error: the Ray job stopped: %s' % one_line(e, last=True), file=err)
        counts['failed'] += len(entries) - sum(counts.values())
    finally:
        ray.shutdown()
        stop.clear()
    return RunResult(counts['ok'], counts['failed'] + counts['partial'], interrupted,
                     counts['partial']), label


def pumped(batches):
    """A queue.Queue fed from the iterator ``batches`` on a thread of its own: ('batch', b)
    for each, then ('end', None) or ('error', exception). The driver waits on the queue, so a
    Ctrl-C interrupts the wait, never Ray's iterator (which would end it: the rows still on
    their way would be lost)."""
    out = queue.Queue()

    def pump():
        try:
            for batch in batches:
                out.put(('batch', batch))
        except BaseException as e:  # noqa: BLE001 - handed to the driver's thread
            out.put(('error', e))
        else:
            out.put(('end', None))

    threading.Thread(target=pump, daemon=True).start()
    return out


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM held back for the block (delivered at its end), where the
    platform can."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, 'pthread_sigmask'):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def take_rows(batch, seen, manifest, counts, err):
    """Append each manifest line of ``batch`` to ``manifest`` (once per input index), count
    its status and print its error line (and a clip's note)."""
    for index, line in zip(batch['index'], batch['line']):
        if int(index) in seen:
            continue
        seen.add(int(index))
        record = json.loads(line)
        manifest.write_line(line)
        counts[record['status']] += 1
        if record['error']:
            print('error: %s' % record['error'], file=err)
        if record.get('note'):
            print('note: %s' % record['note'], file=err)


class StopFile:
    """OUT/STOP_FILE, which tells the job's workers (on any machine: they all see OUT) to
    write nothing more. A stale one (a killed driver's) is removed first; the run holds the
    folder's lock, so no other job can be reading it."""

    def __init__(self, out_folder):
        self.out_folder = out_folder
        self.clear()

    def request(self):
        with contextlib.suppress(OSError):
            folder = open_folder(self.out_folder)
            try:
                os.close(create_file(STOP_FILE, folder, truncate=True))
            finally:
                os.close(folder)

    def clear(self):
        with contextlib.suppress(OSError):
            folder = open_folder(self.out_folder)
            try:
                os.remove(STOP_FILE, dir_fd=folder)
            finally:
                os.close(folder)
