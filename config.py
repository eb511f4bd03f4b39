"""RingNet command-line flags: the original's names and defaults, plus a few additions.

Flags are defined on a fresh ``absl.flags.FlagValues`` each time, so importing this module
parses nothing and keeps no global state. ``get_config(argv)`` is the original's entry point.
"""
import sys

from absl import flags

from util.io.image_io import MAX_PIXELS
from util.model.backend import BACKENDS, PRECISIONS, check_choice

PRETRAINED_MODEL = './model/ring_6_68641'


def build_flags(flag_values=None):
    """Define every flag on ``flag_values`` (a new FlagValues when None) and return it."""
    fv = flags.FlagValues() if flag_values is None else flag_values
    # --- the original's flags (names and defaults unchanged) ---
    flags.DEFINE_string('img_path', './input_images/000001.jpg',
                        'Image or video to run: a file, a folder (every image and video in '
                        'it), a glob pattern (quote it; ** spans folders) or a .txt list of '
                        'paths, one per line',
                        flag_values=fv)
    flags.DEFINE_string('out_folder', './RingNet_output',
                        'The output path to store images', flag_values=fv)
    flags.DEFINE_boolean('save_obj_file', False,
                         'If true the output meshes will be saved', flag_values=fv)
    flags.DEFINE_boolean('save_flame_parameters', False,
                         'If true the camera and flame parameters will be saved', flag_values=fv)
    flags.DEFINE_boolean('neutralize_expression', False,
                         'If true the neutral-expression template mesh (VOCA) will be saved',
                         flag_values=fv)
    flags.DEFINE_boolean('save_texture', False,
                         'If true the texture map will be saved', flag_values=fv)
    flags.DEFINE_string('flame_model_path', './flame_model/generic_model.pkl',
                        'path to the neutral FLAME model', flag_values=fv)
    flags.DEFINE_string('flame_texture_data_path', './flame_model/texture_data_512.npy',
                        'path to the FLAME texture data', flag_values=fv)
    flags.DEFINE_string('load_path', PRETRAINED_MODEL, 'path to trained model', flag_values=fv)
    flags.DEFINE_integer('batch_size', 1,
                         'Images per network call, for graphs without a fixed batch size (the '
                         'original graph has batch 1 built in; the demo feeds one image at a time)',
                         flag_values=fv)
    flags.DEFINE_integer('img_size', 224,
                         'Input image size to the network after preprocessing', flag_values=fv)
    flags.DEFINE_string('data_format', 'NHWC', 'Data format', flag_values=fv)
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
                        'FLAME landmark embedding (51 static points), for the landmarks',
                        flag_values=fv)
    flags.DEFINE_string('flame_dynamic_embedding_path',
                        './flame_model/flame_dynamic_embedding.npy',
                        'FLAME landmark embedding (17 yaw-dependent contour points), for the '
                        'landmarks', flag_values=fv)
    flags.DEFINE_boolean('recursive', False, 'With a folder as --img_path: also the images in '
                         'its sub-folders (outputs keep the sub-folder layout)', flag_values=fv)
    flags.DEFINE_boolean('skip_existing', False,
                         'Skip an input whose outputs for every requested flag all exist (to '
                         'finish an interrupted run); with nothing left the network never loads',
                         flag_values=fv)
    flags.DEFINE_boolean('quiet', False, 'No progress bar (there is one only when stderr is a '
                         'terminal); errors and the final summary are still printed',
                         flag_values=fv)
    flags.DEFINE_enum('backend', 'auto', list(BACKENDS),
                      'Network runtime. tf: TensorFlow. onnx: ONNX Runtime, converting the '
                      'checkpoint once (about 40 s, verified against TensorFlow, cached) and then '
                      'starting without TensorFlow. auto: onnx if a verified conversion of this '
                      'checkpoint is cached, else tf (it converts only for --precision=int8)',
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


def wants_help(argv):
    """True if ``argv`` (argv[0] is the program name) asks for the flag list."""
    return any(arg in HELP_FLAGS for arg in argv[1:])


def help_text():
    """Every flag with its default and meaning (what --help prints)."""
    return 'usage: python -m demo [--flag=value ...]\n\n' + build_flags().get_help()


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
    if not (fv.smooth_min_cutoff > 0 and fv.smooth_d_cutoff > 0 and fv.smooth_beta >= 0):
        raise flags.Error('--smooth_min_cutoff and --smooth_d_cutoff must be above 0, '
                          '--smooth_beta at least 0')
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


def default_config(**overrides):
    """Flags with their defaults, then ``overrides`` applied (for library use and tests)."""
    fv = get_config(['ringnet'])
    for name, value in overrides.items():
        setattr(fv, name, value)
    return fv
