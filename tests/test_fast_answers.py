"""Answers that need no network (--help, a missing input, an empty folder) come without
importing TensorFlow, each in a fresh interpreter so nothing else has imported it first."""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_INPUT_RC = 2  # a missing input or an empty folder: nothing can start (demo.py)

PROBE = ("import sys, demo\n"
         "rc = demo.main(%r)\n"
         "print(rc, 'tensorflow' in sys.modules)\n")


def run_main(argv, tmp_path):
    """demo.main(argv) in a fresh interpreter -> (rc, tensorflow imported?, stdout, stderr)."""
    env = dict(os.environ, RINGNET_CACHE_DIR=str(tmp_path / 'cache'))
    proc = subprocess.run([sys.executable, '-c', PROBE % (['demo'] + argv,)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the probe itself finished
    rc, tf_loaded = proc.stdout.splitlines()[-1].split()
    return int(rc), {'True': True, 'False': False}[tf_loaded], proc.stdout, proc.stderr


def lists_flag(help_text, name):
    """absl lists a string flag as --name and a boolean one as --[no]name."""
    return re.search(r'^\s*--(\[no\])?%s:' % re.escape(name), help_text, re.M) is not None


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('error:')]


def test_help_is_rc0_without_tensorflow(tmp_path):
    rc, tf_loaded, out, _ = run_main(['--help'], tmp_path)
    assert (rc, tf_loaded) == (0, False)
    assert lists_flag(out, 'img_path') and lists_flag(out, 'save_texture')


def test_missing_image_is_rc1_without_tensorflow(tmp_path):
    missing = str(tmp_path / 'no_such_photo.jpg')
    out_folder = tmp_path / 'out'
    rc, tf_loaded, _, err = run_main(['--img_path', missing, '--out_folder', str(out_folder)],
                                     tmp_path)
    assert (rc, tf_loaded) == (NO_INPUT_RC, False)
    errors = error_lines(err)
    assert len(errors) == 1 and missing in errors[0], err
    assert 'Traceback' not in err
    assert not out_folder.exists() and not (tmp_path / 'cache').exists()


def test_empty_folder_is_rc1_without_tensorflow(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('not an image')
    (empty / '.hidden.jpg').write_bytes(b'')
    rc, tf_loaded, _, err = run_main(['--img_path', str(empty), '--out_folder',
                                      str(tmp_path / 'out')], tmp_path)
    assert (rc, tf_loaded) == (NO_INPUT_RC, False)
    errors = error_lines(err)
    assert len(errors) == 1 and 'no image or video files' in errors[0] and str(empty) in errors[0], err
    assert not (tmp_path / 'out').exists()


def test_demo_flag_does_not_change_the_fast_answers(tmp_path):
    """--demo is read, but the input is checked before any asset is generated or loaded."""
    missing = str(tmp_path / 'nope.png')
    rc, tf_loaded, _, err = run_main(['--demo', '--img_path', missing], tmp_path)
    assert (rc, tf_loaded) == (NO_INPUT_RC, False)
    assert len(error_lines(err)) == 1 and 'SYNTHETIC' not in err
    assert not (tmp_path / 'cache').exists()


def test_python_m_demo_help_lists_the_flags():
    proc = subprocess.run([sys.executable, '-m', 'demo', '--help'], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in ('img_path', 'out_folder', 'save_obj_file', 'save_flame_parameters',
                 'neutralize_expression', 'save_texture', 'flame_model_path',
                 'flame_texture_data_path', 'load_path', 'demo', 'template_mesh'):
        assert lists_flag(proc.stdout, flag), flag
    assert not lists_flag(proc.stdout, 'no_such_flag')


def test_face_flags_without_detect_faces_are_refused(tmp_path):
    image = os.path.join(ROOT, 'input_images', '000001.jpg')
    for flag in ('--max_faces=2', '--min_face_size=80'):
        rc, tf_loaded, _, err = run_main(['--img_path', image, flag], tmp_path)
        assert (rc, tf_loaded) == (2, False)
        assert error_lines(err) == ['error: --max_faces and --min_face_size need --detect_faces '
                                    '(see --help)']


def test_nothing_left_to_skip_loads_no_network(tmp_path):
    """--skip_existing with every output there: no model file is needed, none is imported."""
    out = tmp_path / 'out'
    (out / 'images').mkdir(parents=True)
    (out / 'images' / '000001.png').write_bytes(b'panel')
    image = os.path.join(ROOT, 'input_images', '000001.jpg')
    # what the run that made it recorded: the output and its size
    (out / 'manifest.jsonl').write_text(json.dumps(
        {'input': image, 'status': 'ok', 'faces': None, 'outputs': ['images/000001.png'],
         'sizes': [5]}) + '\n')
    rc, tf_loaded, stdout, _ = run_main(['--img_path', image, '--out_folder', str(out),
                                         '--skip_existing', '--load_path', str(tmp_path / 'no')],
                                        tmp_path)
    assert (rc, tf_loaded) == (0, False)
    assert '0 of 1 input(s) done, 1 skipped' in stdout


def test_int8_on_tensorflow_is_refused_before_anything_runs(tmp_path):
    rc, tf_loaded, _, err = run_main(['--precision=int8', '--backend=tf'], tmp_path)
    assert (rc, tf_loaded) == (2, False)
    assert error_lines(err) == ['error: --precision=int8 needs --backend=onnx (or auto) '
                                '(see --help)']
