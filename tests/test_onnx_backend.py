"""The ONNX Runtime backend against the TensorFlow graph it is converted from, and its cache.

Outputs through --backend=onnx must equal those through --backend=tf (theta within 1e-4,
vertices within 1e-5 m, images within one grey level on 99.9 % of pixels), on both synthetic
checkpoint flavours, converted in this run (cold cache) and loaded from the cache (warm). The
files are read back with numpy / OpenCV, not with the code under test.
"""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from util.model.backend import load_backend, tf_backend
from util.model.conversion_cache import ConversionCache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, 'input_images', '000001.jpg')
ALL = ['--save_obj_file', '--save_flame_parameters', '--neutralize_expression', '--save_texture']


def run_demo(args, cache):
    env = dict(os.environ, RINGNET_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, '-m', 'demo'] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def model_args(prefix, flame_assets):
    return ['--load_path', prefix, '--flame_model_path', flame_assets['flame_model'],
            '--flame_texture_data_path', flame_assets['texture_data']]


def obj_vertices(path):
    """The 'v x y z' rows of an OBJ file, parsed here with numpy."""
    with open(path) as fh:
        rows = [line.split()[1:4] for line in fh if line.startswith('v ')]
    return np.array(rows, dtype=np.float64)


def assert_same_outputs(tf_out, onnx_out):
    npy_tf = np.load(os.path.join(tf_out, 'params', '000001.npy'), allow_pickle=True).item()
    npy_onnx = np.load(os.path.join(onnx_out, 'params', '000001.npy'), allow_pickle=True).item()
    for key in npy_tf:
        np.testing.assert_allclose(npy_onnx[key], npy_tf[key], atol=1e-4, rtol=0)
    for rel in ('mesh/000001.obj', 'texture/000001.obj'):
        dist = np.linalg.norm(obj_vertices(os.path.join(onnx_out, rel))
                              - obj_vertices(os.path.join(tf_out, rel)), axis=1)
        assert dist.max() <= 1e-5, (rel, dist.max())
    for rel in ('images/000001.png', 'texture/000001.png'):
        a = cv2.imread(os.path.join(tf_out, rel)).astype(int)
        b = cv2.imread(os.path.join(onnx_out, rel)).astype(int)
        assert a.shape == b.shape
        assert (np.abs(a - b).max(axis=-1) <= 1).mean() >= 0.999, rel


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('onnx_cache')


@pytest.mark.parametrize('flavour', ['checkpoint_v2', 'checkpoint_v1'])
def test_onnx_outputs_equal_tf_cold_and_warm(flavour, request, flame_assets, cache, tmp_path):
    prefix = request.getfixturevalue(flavour)
    args = ['--img_path', IMAGE] + model_args(prefix, flame_assets) + ALL
    run_demo(args + ['--out_folder', str(tmp_path / 'tf'), '--backend=tf'], cache)
    cold = run_demo(args + ['--out_folder', str(tmp_path / 'cold'), '--backend=onnx'], cache)
    assert cold.stderr.count('converting the checkpoint for ONNX Runtime') == 1
    warm = run_demo(args + ['--out_folder', str(tmp_path / 'warm'), '--backend=onnx'], cache)
    assert 'converting' not in warm.stderr
    for run in ('cold', 'warm'):
        assert_same_outputs(str(tmp_path / 'tf'), str(tmp_path / run))


PROBE = ("import sys, demo\n"
         "rc = demo.main(%r)\n"
         "print(rc, 'tensorflow' in sys.modules)\n")


def test_auto_converts_once_and_no_run_imports_tensorflow(checkpoint_v2, flame_assets,
                                                          tmp_path):
    """--backend=auto (the default) converts on first use, in a child process: neither the
    cold run nor the warm one imports TensorFlow itself."""
    env = dict(os.environ, RINGNET_CACHE_DIR=str(tmp_path / 'fresh'))
    runs = []
    for name in ('cold', 'warm'):
        argv = (['demo', '--img_path', IMAGE, '--out_folder', str(tmp_path / name)]
                + model_args(checkpoint_v2, flame_assets) + ALL)
        runs.append(subprocess.run([sys.executable, '-c', PROBE % (argv,)], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=300))
    cold, warm = runs
    assert cold.stdout.split()[-2:] == ['0', 'False'], cold.stderr[-2000:]
    assert warm.stdout.split()[-2:] == ['0', 'False'], warm.stderr[-2000:]
    assert cold.stderr.count('converting the checkpoint for ONNX Runtime, once') == 1
    assert 'converting' not in warm.stderr
    for run in (cold, warm):  # the summary names what ran
        assert 'images/s, ONNX Runtime fp32)' in run.stdout.splitlines()[-2]


def test_a_batch_equals_its_images_one_by_one(checkpoint_v2, cache, tmp_path):
    """The converted graph's batch dimension is free: a batch of N gives each image what it
    gets alone (theta within 1e-5), for fp32 and int8."""
    assert load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache)).fixed_batch is None
    own = copy_cache(cache, tmp_path)
    images = np.random.default_rng(5).uniform(-1, 1, (5, 224, 224, 3)).astype(np.float32)
    for precision in ('fp32', 'int8'):
        backend = load_backend(checkpoint_v2, backend='onnx', precision=precision,
                               cache_dir=str(own))
        verts, theta = backend.predict(images)
        assert verts.shape == (5, backend.n_vertices, 3) and theta.shape == (5, 159)
        for k, image in enumerate(images):
            v1, t1 = backend.predict(image[None])
            assert np.abs(theta[k] - t1[0]).max() <= 1e-5, precision
            assert np.abs(verts[k] - v1[0]).max() <= 1e-5, precision


def test_a_cached_conversion_runs_without_tensorflow(checkpoint_v2, flame_assets, cache,
                                                     tmp_path):
    load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache))  # cached (or converted)
    argv = (['demo', '--img_path', IMAGE, '--out_folder', str(tmp_path / 'o')]
            + model_args(checkpoint_v2, flame_assets) + ALL)  # --backend=auto, the default
    proc = subprocess.run([sys.executable, '-c', PROBE % (argv,)], cwd=ROOT,
                          env=dict(os.environ, RINGNET_CACHE_DIR=str(cache)),
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.split()[-2:] == ['0', 'False'], proc.stderr[-2000:]


def copy_cache(cache, tmp_path):
    target = tmp_path / 'cache'
    shutil.copytree(str(cache), str(target))
    return target


def test_truncated_model_is_replaced_once_by_two_processes_at_once(checkpoint_v2,
                                                                   flame_assets, cache,
                                                                   tmp_path):
    load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache))
    own = copy_cache(cache, tmp_path)
    entry = ConversionCache(checkpoint_v2, str(own))
    path = os.path.join(entry.folder, entry.record('fp32')['file'])
    with open(path, 'r+b') as fh:
        fh.truncate(os.path.getsize(path) // 2)
    assert entry.model('fp32') is None  # the record's sha256 no longer matches
    args = ['--img_path', IMAGE] + model_args(checkpoint_v2, flame_assets) + ['--backend=onnx']
    env = dict(os.environ, RINGNET_CACHE_DIR=str(own))
    procs = [subprocess.Popen([sys.executable, '-m', 'demo'] + args
                              + ['--out_folder', str(tmp_path / ('o%d' % k))], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    errs = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        errs.append(err)
    # one converts, the other waits for it and takes its model from the cache
    assert sum('converting the checkpoint' in err for err in errs) == 1
    backend = entry.model('fp32')  # an intact, verified model is cached again
    assert backend is not None
    models = [n for n in os.listdir(entry.folder) if n.startswith('fp32-')]
    assert models == [entry.record('fp32')['file']]  # the truncated one is gone
    images = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    net = tf_backend(checkpoint_v2)
    (v_tf, t_tf), (v_onnx, t_onnx) = net.predict(images, True), backend.predict(images)
    assert np.abs(t_tf - t_onnx).max() <= 1e-4 and np.abs(v_tf - v_onnx).max() <= 1e-5


def test_a_changed_checkpoint_is_converted_again(flame_assets, cache, tmp_path):
    from synthetic.checkpoint import write_checkpoint
    prefix = str(tmp_path / 'ckpt' / 'ring_6_68641')
    said = []
    write_checkpoint(prefix, flame_assets['flame_model'], variant='v2', seed=7)
    load_backend(prefix, backend='onnx', cache_dir=str(cache), say=said.append)
    assert len(said) == 1 and said[0].startswith('converting')
    # new weights written into the same files, timestamps put back (as `cp -p` or an archive
    # would): size, mtime and inode are unchanged, only the content (and ctime) differ
    other = write_checkpoint(str(tmp_path / 'other' / 'ring_6_68641'),
                             flame_assets['flame_model'], variant='v2', seed=8)
    for suffix in ('.meta', '.index', '.data-00000-of-00001'):
        target = prefix + suffix
        before = os.stat(target)
        with open(other + suffix, 'rb') as src:
            data = src.read()
        assert len(data) == before.st_size
        with open(target, 'r+b') as fh:
            fh.write(data)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    backend = load_backend(prefix, backend='onnx', cache_dir=str(cache), say=said.append)
    assert len(said) == 2 and said[1].startswith('converting')
    images = np.random.default_rng(1).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    v_tf, t_tf = tf_backend(prefix).predict(images, True)
    v_onnx, t_onnx = backend.predict(images)
    assert np.abs(t_tf - t_onnx).max() <= 1e-4 and np.abs(v_tf - v_onnx).max() <= 1e-5


def test_int8_reports_its_error_and_is_refused_beyond_the_limit(checkpoint_v2, cache,
                                                                 tmp_path):
    from util.model.onnx_backend import OnnxBackend
    load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache))
    own = copy_cache(cache, tmp_path)
    said = []
    backend = load_backend(checkpoint_v2, backend='onnx', precision='int8', cache_dir=str(own),
                           say=said.append, int8_max_mm=0.0)  # a limit nothing can meet
    assert any(line.startswith('int8 vs fp32 on the calibration images: theta max ')
               and ' mm' in line for line in said), said
    assert any('refused' in line for line in said)
    fp32 = ConversionCache(checkpoint_v2, str(own))
    assert isinstance(backend, OnnxBackend)
    assert backend.path == os.path.join(fp32.folder, fp32.record('fp32')['file'])
    # the refusal is remembered: the next run does not quantize again
    said.clear()
    load_backend(checkpoint_v2, backend='onnx', precision='int8', cache_dir=str(own),
                 say=said.append, int8_max_mm=0.0)
    assert said == []


def test_an_unusable_cache_or_a_failing_conversion_runs_on_tensorflow(checkpoint_v2, tmp_path,
                                                                      monkeypatch):
    from util.model.tf_backend import RingNet_inference
    from util.model import conversion_cache
    blocked = tmp_path / 'a_file'
    blocked.write_text('not a folder')  # nothing can be created below it
    said = []
    backend = load_backend(checkpoint_v2, backend='auto', cache_dir=str(blocked),
                           say=said.append)
    assert isinstance(backend, RingNet_inference)
    assert len(said) == 1 and said[0].startswith('error: ') and 'Not a directory' in said[0]
    assert said[0].endswith('; running on TensorFlow')

    def broken(load_path, path):
        raise RuntimeError('tf2onnx failed\nsecond line')
    monkeypatch.setattr(conversion_cache, 'run_converter', broken)
    said.clear()
    backend = load_backend(checkpoint_v2, backend='auto', cache_dir=str(tmp_path / 'c'),
                           say=said.append)
    assert isinstance(backend, RingNet_inference)
    assert said[-1] == ('error: %s: the ONNX conversion failed (RuntimeError: tf2onnx failed); '
                        'running on TensorFlow' % checkpoint_v2)


def test_a_conversion_that_differs_from_tensorflow_is_refused(checkpoint_v2, tmp_path,
                                                              monkeypatch):
    """The real conversion, its measured errors made worse than the limit: refused in one
    line, TensorFlow runs, nothing is cached."""
    from util.model.tf_backend import RingNet_inference
    from util.model import conversion_cache
    real = conversion_cache.run_converter

    def differing(load_path, path):
        record = real(load_path, path)
        record['errors_vs_tf']['vertices_max_m'] = 2e-5
        return record
    monkeypatch.setattr(conversion_cache, 'run_converter', differing)
    said = []
    backend = load_backend(checkpoint_v2, backend='auto', cache_dir=str(tmp_path / 'c'),
                           say=said.append)
    assert isinstance(backend, RingNet_inference)
    assert said[0].startswith('converting the checkpoint')
    assert said[1:] == ['error: %s: the ONNX conversion differs from TensorFlow (theta max '
                        '%s, vertices max 0.020 mm, mean %s mm); refused, running on TensorFlow'
                        % (checkpoint_v2, said[1].split('theta max ')[1].split(',')[0],
                           said[1].split('mean ')[1].split(' mm')[0])]
    entry = ConversionCache(checkpoint_v2, str(tmp_path / 'c'))
    assert entry.record('fp32') is None and entry.model_file('fp32') is None
    assert not [n for n in os.listdir(entry.folder) if n.endswith('.onnx')]


def test_the_converter_names_a_checkpoint_it_cannot_load(checkpoint_v2, tmp_path):
    """The child process's failure comes back as its own one line."""
    from util.model.conversion_cache import run_converter
    broken = tmp_path / 'ring_6_68641'
    for suffix in ('.index', '.data-00000-of-00001'):
        shutil.copy(checkpoint_v2 + suffix, str(broken) + suffix)
    with open(checkpoint_v2 + '.meta', 'rb') as fh:
        (tmp_path / 'ring_6_68641.meta').write_bytes(fh.read()[:1000])
    with pytest.raises(RuntimeError) as info:
        run_converter(str(broken), str(tmp_path / 'out.onnx'))
    message = str(info.value)
    assert '\n' not in message and str(broken) + '.meta' in message, message
    assert not (tmp_path / 'out.onnx').exists()


def test_a_nan_error_is_never_within_the_limit(checkpoint_v2, cache, tmp_path, monkeypatch):
    from util.model import conversion_cache
    from util.model.onnx_backend import OnnxBackend
    load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache))
    own = copy_cache(cache, tmp_path)
    monkeypatch.setattr(conversion_cache, 'compare', lambda a, b, images: {
        'theta_max': 0.0, 'vertices_max_m': float('nan'), 'vertices_mean_m': 0.0})
    said = []
    backend = load_backend(checkpoint_v2, backend='onnx', precision='int8', cache_dir=str(own),
                           say=said.append)
    assert any('refused' in line for line in said)
    assert isinstance(backend, OnnxBackend) and os.path.basename(backend.path).startswith('fp32-')


def test_a_garbled_digest_memo_is_only_a_rehash(checkpoint_v2, cache, tmp_path):
    from util.model.onnx_backend import OnnxBackend
    load_backend(checkpoint_v2, backend='onnx', cache_dir=str(cache))
    own = copy_cache(cache, tmp_path)
    for garbage in ('null', '[1]', '{"x": 5}', '{'):
        (own / 'onnx' / 'file-digests.json').write_text(garbage)
        assert isinstance(load_backend(checkpoint_v2, backend='auto', cache_dir=str(own)),
                          OnnxBackend)


def test_tensorflow_says_once_that_it_runs_image_by_image(checkpoint_v2):
    """--batch_size on --backend=tf: the original graph has batch 1 built in; one note, and a
    batch still predicts (image by image) what each image gives alone."""
    said = []
    net = load_backend(checkpoint_v2, batch_size=4, backend='tf', say=said.append)
    assert said == ['note: --batch_size 4: TensorFlow takes one image at a time here; running '
                    'image by image']
    images = np.random.default_rng(2).uniform(-1, 1, (3, 224, 224, 3)).astype(np.float32)
    verts, theta = net.predict(images, True)
    for k in range(3):
        v1, t1 = net.predict(images[k:k + 1], True)
        assert np.array_equal(theta[k], t1[0]) and np.array_equal(verts[k], v1[0])
    said.clear()
    load_backend(checkpoint_v2, batch_size=1, backend='tf', say=said.append)
    assert said == []
