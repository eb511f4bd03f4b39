"""The layer map (docs/ARCHITECTURE.md), checked on the source with ``ast``.

Ranks: 0 util.io (and util/io/*), 1 smpl_webuser, 2 util/*.py and run_RingNet, 3 synthetic,
4 util.pipeline, 5 demo and config. A module may import its own rank or lower. Extra rules:
only util.pipeline.model_files and demo (and synthetic itself) import ``synthetic``; only
run_RingNet, synthetic.checkpoint, util.detect and util.onnx_convert import ``tensorflow``; only util.detect imports ``mtcnn``
(which loads TensorFlow itself); only util.pipeline.ray_runner imports ``ray``. Every import counts, at any depth
(inside functions, classes, try/if blocks), relative ones included, and so do
``importlib.import_module('name')`` / ``__import__('name')`` with a literal name.
tests/ and bench/ are not checked; third-party modules are ignored.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UNCHECKED_TOP = ('tests', 'bench')
SYNTHETIC_IMPORTERS = ('util.pipeline.model_files', 'demo')
TENSORFLOW_IMPORTERS = ('run_RingNet', 'synthetic.checkpoint', 'util.detect', 'util.onnx_convert')
MTCNN_IMPORTERS = ('util.detect',)
RAY_IMPORTERS = ('util.pipeline.ray_runner',)


def rank(name):
    """Layer of a dotted module (or module.attribute) name of this project; None if not ours."""
    parts = name.split('.')
    top, sub = parts[0], (parts[1] if len(parts) > 1 else None)
    if top == 'util':
        return {'io': 0, 'pipeline': 4}.get(sub, 2)
    return {'smpl_webuser': 1, 'run_RingNet': 2, 'synthetic': 3, 'demo': 5, 'config': 5}.get(top)


def _modules(root):
    """(dotted name, file path) of every .py module under ``root`` except tests/ and bench/."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == '.' else rel.split(os.sep)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(('.', '__pycache__'))
            and not (not parts and d in UNCHECKED_TOP)
            and not os.path.exists(os.path.join(dirpath, d, 'pyvenv.cfg')))
        for fn in sorted(filenames):
            if fn.endswith('.py'):
                stem = fn[:-3]
                name = '.'.join(parts if stem == '__init__' else parts + [stem])
                yield name, os.path.join(dirpath, fn), stem == '__init__'


def _imports(tree, module, is_package):
    """Every name ``module`` imports: (dotted name, line), from anywhere in the tree."""
    package = module.split('.') if is_package else module.split('.')[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                base = '.'.join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                yield (base if alias.name == '*' else '%s.%s' % (base, alias.name)).strip('.'), \
                    node.lineno
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
            if called in ('import_module', '__import__'):
                yield node.args[0].value, node.lineno


def import_graph(root):
    """{module: [(imported name, line)]} for every checked module under ``root``."""
    graph = {}
    for module, path, is_package in _modules(root):
        with open(path, 'rb') as fh:
            tree = ast.parse(fh.read(), filename=path)
        graph[module] = list(_imports(tree, module, is_package))
    return graph


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + '.')


def layer_violations(root):
    """[(importer, imported, why)] for every import under ``root`` that breaks the layer map."""
    found = []
    for module, imports in sorted(import_graph(root).items()):
        own = rank(module)
        if own is None:
            found.append((module, '', 'module is not in the layer map'))
            continue
        for name, _ in imports:
            other = rank(name)
            if other is not None and other > own:
                found.append((module, name, 'rank %d imports rank %d' % (own, other)))
            if _within(name, 'synthetic') and not _within(module, 'synthetic') \
                    and module not in SYNTHETIC_IMPORTERS:
                found.append((module, name, 'imports synthetic'))
            if _within(name, 'tensorflow') and module not in TENSORFLOW_IMPORTERS:
                found.append((module, name, 'imports tensorflow'))
            if _within(name, 'mtcnn') and module not in MTCNN_IMPORTERS:
                found.append((module, name, 'imports mtcnn'))
            if _within(name, 'ray') and module not in RAY_IMPORTERS:
                found.append((module, name, 'imports ray'))
    return sorted(set(found))


# ---------------------------------------------------------------------------------------------


def test_repository_follows_the_layer_map():
    graph = import_graph(ROOT)
    # the walk really saw the project (so an empty answer below means something)
    assert {'util.io.atomic', 'smpl_webuser.lbs', 'util.preprocess', 'run_RingNet',
            'synthetic.checkpoint', 'util.pipeline.backends', 'demo', 'config'} <= set(graph)
    assert not any(_within(m, 'tests') or _within(m, 'bench') for m in graph)
    names = {m: {n for n, _ in imports} for m, imports in graph.items()}
    assert 'run_RingNet.RingNet_inference' in names['util.pipeline.backends']  # in a function
    assert 'tensorflow' in names['run_RingNet']
    assert layer_violations(ROOT) == []


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


FAKE_TREE = {
    # --- violations ---
    'util/io/x.py': 'from util.pipeline.pipeline import Pipeline\n',
    'util/io/y.py': 'def f():\n    from ..pipeline import sources\n',  # relative, in a function
    'util/foo.py': 'import numpy as np\nimport synthetic.flame\n',
    'smpl_webuser/a.py': 'import os\n\n\nclass A:\n    def m(self):\n        if True:\n'
                         '            import util.renderer\n',
    'util/pipeline/sources.py': 'try:\n    from synthetic import demo_assets\nexcept ImportError:\n'
                                '    pass\n',
    'util/bar.py': 'def load():\n    import tensorflow as tf\n    from mtcnn import MTCNN\n',
    'util/baz.py': 'import importlib\n\n\ndef g():\n    return importlib.import_module('
                   '"tensorflow.compat.v1")\n',
    'config.py': 'from synthetic.demo_assets import DEMO_NOTICE\n',
    'tools/helper.py': 'import os\n',
    # --- allowed ---
    'util/__init__.py': '',
    'util/io/__init__.py': '',
    'util/io/atomic.py': 'import os\n',
    'util/io/mesh_io.py': 'import numpy as np\nfrom util.io.atomic import atomic_path\n'
                          'from . import atomic\n',
    'util/renderer.py': 'import numba\nfrom util.camera import project\n'
                        'from util.io.mesh_io import Mesh\nfrom smpl_webuser.lbs import lbs\n',
    'util/camera.py': 'import numpy\n',
    'util/detect.py': 'class D:\n    def m(self):\n        from mtcnn import MTCNN\n',
    'smpl_webuser/__init__.py': '',
    'smpl_webuser/lbs.py': 'import scipy.sparse as sp\nfrom util.io import safe_pickle\n',
    'run_RingNet.py': 'import tensorflow as tf\nfrom util.io.checkpoint_files import x\n',
    'synthetic/__init__.py': '',
    'synthetic/checkpoint.py': 'import tensorflow as tf\nfrom smpl_webuser.lbs import lbs\n',
    'synthetic/demo_assets.py': 'def gen():\n    from synthetic.checkpoint import write_checkpoint\n'
                                '    from .flame import write_flame_assets\n',
    'util/pipeline/__init__.py': 'from util.pipeline.pipeline import Pipeline\n',
    'util/pipeline/frames.py': 'import collections\n',
    'util/pipeline/pipeline.py': 'from .frames import Frame\nfrom util.preprocess import p\n'
                                 'from util.renderer import four_panel\n',
    'util/pipeline/model_files.py': 'def resolve():\n    from synthetic.demo_assets import e\n',
    'util/pipeline/backends.py': 'def load_backend():\n    from run_RingNet import RingNet_inference\n',
    'demo.py': 'from absl import flags\nfrom config import get_config\n'
               'from synthetic.demo_assets import DEMO_NOTICE\nfrom util.pipeline import Pipeline\n',
    # --- not checked ---
    'tests/test_x.py': 'import tensorflow\nimport synthetic\n',
    'bench/b.py': 'import tensorflow\nfrom synthetic.flame import w\n',
    '.venv/lib/site.py': 'import tensorflow\n',
}


def test_fake_tree_violations_are_reported_exactly(tmp_path):
    for rel, text in FAKE_TREE.items():
        _write(tmp_path, rel, text)
    assert layer_violations(str(tmp_path)) == sorted([
        ('config', 'synthetic.demo_assets.DEMO_NOTICE', 'imports synthetic'),
        ('smpl_webuser.a', 'util.renderer', 'rank 1 imports rank 2'),
        ('tools.helper', '', 'module is not in the layer map'),
        ('util.bar', 'mtcnn.MTCNN', 'imports mtcnn'),
        ('util.bar', 'tensorflow', 'imports tensorflow'),
        ('util.baz', 'tensorflow.compat.v1', 'imports tensorflow'),
        ('util.foo', 'synthetic.flame', 'imports synthetic'),
        ('util.foo', 'synthetic.flame', 'rank 2 imports rank 3'),
        ('util.io.x', 'util.pipeline.pipeline.Pipeline', 'rank 0 imports rank 4'),
        ('util.io.y', 'util.pipeline.sources', 'rank 0 imports rank 4'),
        ('util.pipeline.sources', 'synthetic.demo_assets', 'imports synthetic'),
    ])


def test_fake_tree_allowed_imports_are_seen(tmp_path):
    """The allowed imports above pass because the rules allow them, not because they were missed."""
    for rel, text in FAKE_TREE.items():
        _write(tmp_path, rel, text)
    names = {m: {n for n, _ in imports} for m, imports in import_graph(str(tmp_path)).items()}
    assert 'synthetic.demo_assets.e' in names['util.pipeline.model_files']
    assert 'run_RingNet.RingNet_inference' in names['util.pipeline.backends']
    assert 'tensorflow' in names['run_RingNet'] and 'tensorflow' in names['synthetic.checkpoint']
    assert {'synthetic.checkpoint.write_checkpoint',
            'synthetic.flame.write_flame_assets'} <= names['synthetic.demo_assets']
    assert 'util.pipeline.frames.Frame' in names['util.pipeline.pipeline']
    assert 'util.io.atomic' in names['util.io.mesh_io']
    assert 'mtcnn.MTCNN' in names['util.detect']
    assert not any(m.startswith(('tests', 'bench', '.venv')) for m in names)
