"""RingNet command-line flags: the original's names and defaults, plus a few additions.

Flags are defined on a fresh ``absl.flags.FlagValues`` each time, so importing this module
parses nothing and keeps no global state. ``get_config(argv)`` is the original's entry point.
``help_text()`` is --help: examples, then the flags in the groups of FLAG_GROUPS. This module
imports neither numpy nor TensorFlow, so --help answers at once.
"""
import sys
import textwrap

from absl import flags

from util.io.limits import MAX_PIXELS
from util.model.choices import BACKENDS, PRECISIONS, check_choice

PRETRAINED_MODEL = './model/ring_6_68641'


def build_flags(flag_values=None):
    """Define every flag on ``flag_values`` (a new FlagValues when None) and return it."""
    fv = flags.FlagValues() if flag_values is None else flag_values
    # --- the original's flags (names and defaults unchanged) ---
    flags.DEFINE_string('img_path', './input_images/000001.jpg',
                        'Image or video to run: a file, a folder (every image and video in '
                        'it), a glob pattern (quote it; ** spans folders), a .txt list of '
                        'paths, one per line, or a .csv / .parquet table with a path column',
                        flag_values=fv)
    flags.DEFINE_string('out_folder', './RingNet_output',
                        'Folder for the outputs: images/NAME.png (input | mesh over it | mesh | '
                        'mesh turned), the files the flags below ask for, manifest.jsonl',
                        flag_values=fv)
    flags.DEFINE_boolean('save_obj_file', False,
                         'Write the mesh: mesh/NAME.obj', flag_values=fv)
    flags.DEFINE_boolean('save_flame_parameters', False,
                         'Write the camera and FLAME parameters: params/NAME.npy, and '
                         'params/NAME.json with the head pose and the crop', flag_values=fv)
    flags.DEFINE_boolean('neutralize_expression', False,
                         'Write the neutral-expression template mesh (VOCA): '
                         'neutral_mesh/NAME.obj', flag_values=fv)
    flags.DEFINE_boolean('save_texture', False,
                         'Write the texture map: texture/NAME.png, .obj and .mtl (needs '
                         '--flame_texture_data_path)', flag_values=fv)
    flags.DEFINE_string('flame_model_path', './flame_model/generic_model.pkl',
                        'FLAME model (generic_model.pkl of FLAME 2019, 2020 or 2023)',
                        flag_values=fv)
    flags.DEFINE_string('flame_texture_data_path', './flame_model/texture_data_512.npy',
                        'FLAME texture data (texture_data_512.npy), for --save_texture',
                        flag_values=fv)
    flags.DEFINE_string('load_path', PRETRAINED_MODEL,
                        'RingNet checkpoint: the prefix of ring_6_68641.meta, .index and '
                        '.data-00000-of-00001, or their folder', flag_values=fv)
    flags.DEFINE_integer('batch_size', 1,
                         'Images per network call: photos and the frames of a video go through '
                         'the network N at a time (ONNX Runtime; --backend=tf has batch 1 built '
                         'in and runs image by image). On a GPU use 16-64',
                         flag_values=fv)
    flags.DEFINE_integer('img_size', 224,
                         'Input image size to the network after preprocessing', flag_values=fv)
    flags.DEFINE_string('data_format', 'NHWC', "Data format (the original's; only NHWC is "
                        'used)', flag_values=fv)
    flags.DEFINE_integer('pose_params', 6, 'number of flame pose parameters', flag_values=fv)
    flags.DEFINE_integer('shape_params', 100, 'number of flame shape parameters', flag_values=fv)
    flags.DEFINE_integer('expression_params', 50, 'number of flame expression parameters',
                         flag_values=fv)
    # --- additions of this port ---
    flags.DEFINE_boolean('demo', False,
                         'Run on a synthetic FLAME-format model and checkpoint (generated on first '
                         'use into a cache folder) instead of the licensed files', flag_values=fv)
    flags.DEFINE_integer('max_pixels', MAX_PIXELS,
                         'Refuse images with more pixels than this (checked in the file header, '
                         'before decoding: a small file can claim a huge picture)',
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_boolean('detect_faces', False,
                         'Find the faces in each image (MTCNN) and frame each one the way '
                         "RingNet's training images are framed; outputs of face k are named "
                         'NAME_face<k>, numbered left to right. Off: the whole image is the '
                         "crop (the original's behaviour; give it a loose crop of one face)",
                         flag_values=fv)
    flags.DEFINE_integer('max_faces', 0, 'With --detect_faces: keep the N largest faces '
                         '(0: all); in a video, follow N faces (0 or 1: one), each its own '
                         'track NAME_face<k>', lower_bound=0, flag_values=fv)
    flags.DEFINE_integer('min_face_size', 0,
                         'With --detect_faces: smallest face box side in input pixels (0: '
                         'auto, 40 px or 1/32 of the longer image side, whichever is larger; '
                         'smaller values, down to 20 px, find smaller faces but detect more '
                         'slowly)',
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_boolean('save_landmarks', False,
                         'Write the 68 FLAME landmarks: landmarks/NAME_2d.txt (x y, input '
                         'pixels) and landmarks/NAME_3d.txt (x y z, model coordinates)',
                         flag_values=fv)
    flags.DEFINE_boolean('draw_landmarks', False,
                         'Draw the 68 landmarks on the overlay panel', flag_values=fv)
    flags.DEFINE_boolean('save_glb', False,
                         'Write glb/NAME.glb: the head as a FLAME rig in one glTF 2.0 file '
                         '(neutral mesh, expression morph targets exp00.. set to the '
                         'prediction, FLAME\'s joints posed; the texture with --save_texture; '
                         'a video track animated over the clip) for Blender, three.js and '
                         'game engines', flag_values=fv)
    flags.DEFINE_string('flame_static_embedding_path', './flame_model/flame_static_embedding.pkl',
                        'FLAME landmark embedding (51 static points), for --save_landmarks '
                        'and --draw_landmarks', flag_values=fv)
    flags.DEFINE_string('flame_dynamic_embedding_path',
                        './flame_model/flame_dynamic_embedding.npy',
                        'FLAME landmark embedding (17 yaw-dependent contour points), for '
                        '--save_landmarks and --draw_landmarks', flag_values=fv)
    flags.DEFINE_boolean('recursive', False, 'With a folder as --img_path: also the images in '
                         'its sub-folders (outputs keep the sub-folder layout)', flag_values=fv)
    flags.DEFINE_boolean('skip_existing', False,
                         'Skip an input whose outputs for every requested flag all exist (to '
                         'finish an interrupted run); with nothing left the network never loads',
                         flag_values=fv)
    flags.DEFINE_boolean('noreport', False,
                         'Do not write OUT/report.html (the results to look through in a '
                         'browser, offline) and OUT/run.json (the run summary for scripts)',
                         flag_values=fv)
    flags.DEFINE_boolean('quiet', False, 'No progress bar (there is one only when stderr is a '
                         'terminal); errors and the final summary are still printed',
                         flag_values=fv)
    flags.DEFINE_boolean('verbose', False,
                         "Show everything TensorFlow prints: its start-up notices (hidden "
                         "otherwise; other lines always pass) and its info and warning logs "
                         "(otherwise TF_CPP_MIN_LOG_LEVEL=2 unless you set it)", flag_values=fv)
    flags.DEFINE_enum('backend', 'auto', list(BACKENDS),
                      'Network runtime. auto (and onnx): ONNX Runtime, converting the checkpoint '
                      'once (about 10 s, verified against TensorFlow, cached), then starting '
                      'without TensorFlow; if that cannot be done, one line and TensorFlow. '
                      'tf: TensorFlow running the original graph (the reference)',
                      flag_values=fv)
    flags.DEFINE_enum('precision', 'fp32', list(PRECISIONS),
                      'int8: quantize the image encoder (ONNX Runtime; the FLAME decoder stays '
                      'float32), converted once, checked against fp32 and refused beyond 2 mm',
                      flag_values=fv)
    flags.DEFINE_integer('every_n_frames', 1, 'Videos: run on every N-th frame only',
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer('max_frames', 0, 'Videos: stop after this many frames (0: all)',
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_boolean('smooth', False,
                         "Videos: smooth each track over time with a One-Euro filter (camera, "
                         "pose, expression; the shape is the track's median). Off: every "
                         "frame's own result, as for a photo", flag_values=fv)
    flags.DEFINE_float('smooth_min_cutoff', 1.0, 'With --smooth: the cutoff frequency (Hz) at '
                       'rest; lower is smoother and lags more', flag_values=fv)
    flags.DEFINE_float('smooth_beta', 0.5, 'With --smooth: how much the cutoff rises with '
                       'speed; higher lags less in fast motion', flag_values=fv)
    flags.DEFINE_float('smooth_d_cutoff', 1.0, 'With --smooth: the cutoff frequency (Hz) of '
                       'the speed estimate', flag_values=fv)
    flags.DEFINE_enum('engine', 'local', ['local', 'ray'],
                      'local: this process. ray: a Ray cluster through Ray Data (pip install -r '
                      'requirements-ray.txt): a pool of workers, each loading the model once and '
                      'writing its own outputs', flag_values=fv)
    flags.DEFINE_string('ray_address', '', "With --engine=ray: the cluster to join (e.g. "
                        "ray://head:10001 or auto); empty: $RAY_ADDRESS if set, else a Ray "
                        "started on this machine", flag_values=fv)
    flags.DEFINE_integer('ray_workers', 0, 'With --engine=ray: workers (actors; 0: as many as '
                         "the cluster's CPUs hold at --ray_cpus_per_worker)", lower_bound=0,
                         flag_values=fv)
    flags.DEFINE_integer('ray_cpus_per_worker', 1, 'With --engine=ray: CPUs each worker '
                         'reserves from Ray (how many workers share a machine)', lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer('ray_threads', 0, "With --engine=ray: TensorFlow threads per worker "
                         "(0: TensorFlow's default, one per core, whose outputs are byte-"
                         "identical to the local engine's; N: fewer threads for many workers "
                         "on a machine, whose last digits may differ)", lower_bound=0,
                         flag_values=fv)
    flags.DEFINE_string('now_dataset', '',
                        'The NoW benchmark folder (docs/formats.md §17): run on every image of '
                        'its --now_split list instead of --img_path, and write the prediction '
                        'NoW evaluates, OUT/subject/challenge/name.obj (the neutral mesh: '
                        'predicted shape, zero expression and pose) and .npy (its 7 landmarks)',
                        flag_values=fv)
    flags.DEFINE_enum('now_split', 'val', ['val', 'test'],
                      "With --now_dataset: the image list (imagepathsvalidation.txt or "
                      "imagepathstest.txt)", flag_values=fv)
    flags.DEFINE_string('template_mesh', '',
                        'Optional OBJ/PLY mesh whose faces replace those of the FLAME model file '
                        '(e.g. the original FLAME_sample.ply)', flag_values=fv)
    return fv


HELP_FLAGS = ('-h', '--help', '-help', '--helpfull', '-?')

# --help's sections, in order: (title, flag names). Every defined flag is in exactly one
# (tests/test_help.py); names not defined (yet) are skipped, so other features' flags can be
# placed here before they land.
FLAG_GROUPS = (
    ('inputs', ('img_path', 'recursive', 'skip_existing', 'max_pixels')),
    ('outputs', ('out_folder', 'save_obj_file', 'save_flame_parameters', 'neutralize_expression',
                 'save_texture', 'save_landmarks', 'draw_landmarks', 'save_glb', 'noreport')),
    ('model files (the licensed files, or --demo)',
     ('demo', 'load_path', 'flame_model_path', 'flame_texture_data_path',
      'flame_static_embedding_path', 'flame_dynamic_embedding_path', 'template_mesh')),
    ('faces', ('detect_faces', 'max_faces', 'min_face_size')),
    ('video', ('every_n_frames', 'max_frames', 'smooth', 'smooth_min_cutoff', 'smooth_beta',
               'smooth_d_cutoff')),
    ('speed', ('backend', 'precision')),
    ('cluster (Ray)', ('engine', 'ray_address', 'ray_workers', 'ray_cpus_per_worker',
                       'ray_threads')),
    ('NoW benchmark', ('now_dataset', 'now_split')),
    ('report (what the run prints)', ('quiet', 'verbose')),
    ("compatibility (the original's flags; the defaults fit its checkpoint)",
     ('img_size', 'batch_size', 'data_format', 'pose_params', 'shape_params',
      'expression_params')),
)

# --help's first lines: (command, what it does). Every command is a valid flag set
# (tests/test_help.py parses them).
EXAMPLES = (
    ('python -m demo --demo --img_path ./input_images/000001.jpg --out_folder ./RingNet_output',
     'try it without the licensed files (a synthetic model: the mesh is not a reconstruction)'),
    ('python -m demo --img_path photo.jpg --out_folder out --save_obj_file '
     '--save_flame_parameters',
     'one photo (a loose crop of one face), with the licensed files in model/ and flame_model/'),
    ('python -m demo --detect_faces --img_path group.jpg --out_folder out --save_obj_file',
     'any photo: every face found and framed for the network'),
    ('python -m demo --img_path photos/ --out_folder out --skip_existing',
     'a folder (or a glob, a .txt list, a .csv/.parquet table); --skip_existing resumes'),
    ('python -m demo --img_path talk.mp4 --out_folder out --save_flame_parameters --smooth',
     'a video: a FLAME track per face and an overlay video'),
    ('python -m demo --engine=ray --img_path photos.parquet --out_folder /shared/out',
     'a dataset on a Ray cluster (pip install -r requirements-ray.txt)'),
)

WIDTH = 100


def wants_help(argv):
    """True if ``argv`` (argv[0] is the program name) asks for the flag list."""
    return any(arg in HELP_FLAGS for arg in argv[1:])


def flag_entry(flag):
    """One flag's --help text: '--name: help (default: value)', wrapped; a boolean is
    '--[no]name', its default shown only when it is on."""
    name = ('--[no]%s' if flag.boolean else '--%s') % flag.name
    text = '%s: %s' % (name, flag.help)  # an enum's help starts with its <choices>
    if not (flag.boolean and not flag.default) and flag.default not in ('', None):
        text += ' (default: %s)' % flag.default_as_str.strip("'")
    return textwrap.fill(text, WIDTH, initial_indent='  ', subsequent_indent='      ')


def help_text():
    """--help: usage, examples, then every flag under its FLAG_GROUPS title."""
    fv = build_flags()
    lines = ['usage: python -m demo --img_path PATH --out_folder FOLDER [--flag ...]', '',
             'RingNet: a face photo in, a FLAME 3D head out.', '', 'examples:']
    for command, what in EXAMPLES:
        lines += ['  ' + command, '      ' + what]
    placed = set()
    for title, names in FLAG_GROUPS:
        defined = [name for name in names if name in fv]
        if defined:
            lines += ['', title + ':'] + [flag_entry(fv[name]) for name in defined]
            placed.update(defined)
    unplaced = sorted(set(fv) - placed)  # a new flag not in FLAG_GROUPS yet still shows
    if unplaced:
        lines += ['', 'other:'] + [flag_entry(fv[name]) for name in unplaced]
    lines += ['', 'Boolean flags take --flag, --noflag or --flag=true/false.',
              'Exit status: 0 all done, 1 some input failed, 2 nothing could start. '
              'More: README.md.']
    return '\n'.join(lines)


def get_config(argv=None):
    """Parse ``argv`` (default ``sys.argv``; argv[0] is the program name) and return the flags.

    Raises absl.flags.Error for an unknown flag, a bad value, or a leftover argument (the
    original takes every input as a flag, e.g. ``--img_path photo.jpg``).
    """
    fv = build_flags()
    rest = fv(list(sys.argv if argv is None else argv))
    if len(rest) > 1:
        raise flags.Error('unexpected argument %r (give images with --img_path)' % rest[1])
    if (fv.max_faces or fv.min_face_size) and not fv.detect_faces:
        raise flags.Error('--max_faces and --min_face_size need --detect_faces')
    if not fv.smooth and any(fv[name].present for name in
                             ('smooth_min_cutoff', 'smooth_beta', 'smooth_d_cutoff')):
        raise flags.Error('--smooth_min_cutoff, --smooth_beta and --smooth_d_cutoff need '
                          '--smooth')
    check_numeric_flags(fv)
    if fv.engine != 'ray' and any(fv[name].present for name in
                                  ('ray_address', 'ray_workers', 'ray_cpus_per_worker',
                                   'ray_threads')):
        raise flags.Error('--ray_address, --ray_workers, --ray_cpus_per_worker and '
                          '--ray_threads need --engine=ray')
    if fv.now_dataset and any(fv[name].present for name in
                              ('img_path', 'recursive', 'detect_faces', 'max_faces')):
        raise flags.Error('--now_dataset reads its images from the NoW image list and frames '
                          'them itself: --img_path, --recursive, --detect_faces and --max_faces '
                          'do not go with it')
    if not fv.now_dataset and fv['now_split'].present:
        raise flags.Error('--now_split needs --now_dataset')
    try:
        check_choice(fv.backend, fv.precision)
    except ValueError as e:
        raise flags.Error(str(e)) from None
    return fv


# every integer and float flag: (lowest, highest, lowest allowed itself?); on top of these,
# every numeric value must be finite (tests/test_flag_ranges.py: each numeric flag is here)
NUMERIC_RANGES = {
    'batch_size': (1, 1024, True), 'img_size': (1, 4096, True),
    'pose_params': (0, 10000, True), 'shape_params': (0, 10000, True),
    'expression_params': (0, 10000, True), 'max_pixels': (1, float('inf'), True),
    'max_faces': (0, float('inf'), True), 'min_face_size': (0, float('inf'), True),
    'every_n_frames': (1, float('inf'), True), 'max_frames': (0, float('inf'), True),
    'smooth_min_cutoff': (0, float('inf'), False), 'smooth_beta': (0, float('inf'), True),
    'smooth_d_cutoff': (0, float('inf'), False), 'ray_workers': (0, float('inf'), True),
    'ray_cpus_per_worker': (1, float('inf'), True), 'ray_threads': (0, float('inf'), True)}


def check_numeric_flags(fv):
    """Raise flags.Error (one line naming the flag) unless every numeric flag of ``fv`` is a
    finite number in its NUMERIC_RANGES range: nan and inf are refused here, before any file
    is read, like any value no run can use."""
    inf = float('inf')
    for name in fv:
        value = fv[name].value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high, closed = NUMERIC_RANGES.get(name, (-inf, inf, True))
        if (value == value and abs(value) != inf and (value >= low if closed else value > low)
                and value <= high):
            continue
        limits = ('at least %g' if closed else 'above %g') % low if low != -inf else ''
        if high != inf:
            limits = 'from %g to %g' % (low, high) if closed else limits + ' and at most %g' % high
        raise flags.Error('--%s=%s: must be a finite number%s' % (name, value, (
            ', ' + limits) if limits else ''))


def default_config(**overrides):
    """Flags with their defaults, then ``overrides`` applied (for library use and tests)."""
    fv = get_config(['ringnet'])
    for name, value in overrides.items():
        setattr(fv, name, value)
    return fv
