"""Output names: the one place that names output files (and derives NAME from an input path).

The panel is one per picture (NAME of the input image); every other kind is one per frame
(the image's NAME, or NAME_face<k> with --detect_faces).
"""
import os

from util.io.mesh_io import mtl_name

# output kind -> (folder, file-name suffix); NAME is the picture's or the frame's name.
# 'texture_mtl' follows 'texture_obj' (util.io.mesh_io.mtl_name).
OUTPUT_FILES = {
    'panel': ('images', '.png'),
    'face_panel': ('images', '.png'),  # per face, when a picture has two or more (NAME_face<k>)
    'mesh': ('mesh', '.obj'),
    'params': ('params', '.npy'),
    'params_json': ('params', '.json'),
    'neutral': ('neutral_mesh', '.obj'),
    'texture': ('texture', '.png'),
    'texture_obj': ('texture', '.obj'),
    'landmarks_2d': ('landmarks', '_2d.txt'),
    'landmarks_3d': ('landmarks', '_3d.txt'),
    'glb': ('glb', '.glb'),
    # the NoW benchmark's prediction (docs/formats.md §17), at OUT/subject/challenge/name
    'now_mesh': ('', '.obj'),
    'now_landmarks': ('', '.npy'),
}
PICTURE_KINDS = ('panel',)
# a video clip's outputs (docs/formats.md §14): 'video' per clip, the others per track
CLIP_FILES = {
    'video': ('video', '.mp4'),
    'track': ('params', '.npz'),
    'track_json': ('params', '.json'),
    'neutral': ('neutral_mesh', '.obj'),
    'glb': ('glb', '.glb'),
}
FRAME_MESH = 'mesh/%s/%06d.obj'  # a track's mesh of video frame number k
MANIFEST = 'manifest.jsonl'
# the run's report (util.outputs.report): the page, the summary for scripts, the page's files
REPORT_HTML, RUN_JSON, REPORT_FOLDER = 'report.html', 'run.json', 'report'


def requested_kinds(config):
    """The output kinds this run writes, in writing order (the panel always)."""
    kinds = ['panel']
    kinds += ['mesh'] if config.save_obj_file else []
    kinds += ['params', 'params_json'] if config.save_flame_parameters else []
    kinds += ['neutral'] if config.neutralize_expression else []
    kinds += ['texture', 'texture_mtl', 'texture_obj'] if config.save_texture else []
    kinds += ['landmarks_2d', 'landmarks_3d'] if config.save_landmarks else []
    kinds += ['glb'] if config.save_glb else []
    kinds += ['now_mesh', 'now_landmarks'] if getattr(config, 'now_dataset', '') else []
    return kinds


def wants_landmarks(config):
    """True when this run needs the landmark embeddings (to write or to draw landmarks, or
    for the NoW prediction's 7 landmarks)."""
    return bool(config.save_landmarks or config.draw_landmarks
                or getattr(config, 'now_dataset', ''))


def frame_kinds(config):
    """requested_kinds written once per frame (all but the picture's panel)."""
    return [k for k in requested_kinds(config) if k not in PICTURE_KINDS]


def output_path(name, kind):
    """Relative path of output ``kind`` of ``name``, e.g. ('a', 'mesh') -> mesh/a.obj."""
    if kind == 'texture_mtl':  # the material library the textured OBJ names, next to it
        obj = output_path(name, 'texture_obj')
        return os.path.join(os.path.dirname(obj), mtl_name(obj))
    folder, suffix = OUTPUT_FILES[kind]
    return os.path.join(folder, name + suffix)


def clip_output_path(name, kind, index=None):
    """Relative path of a clip's output ``kind`` ('video', 'track', 'track_json', 'neutral',
    'glb', or 'frame_mesh' of frame number ``index``) for the clip or track ``name``."""
    if kind == 'frame_mesh':
        return os.path.join(*(FRAME_MESH % (name, index)).split('/'))
    folder, suffix = CLIP_FILES[kind]
    return os.path.join(folder, name + suffix)


def clip_kinds(config):
    """The per-track output kinds a clip gets with this config (besides the video)."""
    return (['track'] + (['track_json'] if config.save_flame_parameters else [])
            + (['neutral'] if config.neutralize_expression else [])
            + (['glb'] if config.save_glb else []))


def safe_name(text):
    """``text`` as an output NAME: whitespace, control characters, path separators and bytes
    that are not valid UTF-8 (surrogate escapes in file names) each become '_'.

    NAME is written into OBJ/MTL files (``mtllib NAME.mtl``, ``map_Kd NAME.png``), which
    split on whitespace and lines; names made equal by this mapping are caught as a
    collision by the pipeline, never overwritten.
    """
    return ''.join('_' if ch.isspace() or not ch.isprintable() or ch in '/\\'
                   or '\ud800' <= ch <= '\udfff' else ch for ch in text)


def output_name(path, root=None):
    """The original's NAME for an input path: the file name without its extension (also right
    for '.jpeg', which the original's ``[:-4]`` cut wrongly), made safe (safe_name).

    With ``root`` (a folder read recursively) the sub-folders below ``root`` are kept, each part
    made safe and joined with '/', so 'a/x.jpg' and 'b/x.jpg' get outputs in sub-folders
    'a/x' and 'b/x' instead of colliding.
    """
    stem = os.path.splitext(path)[0]
    parts = (os.path.relpath(stem, root).split(os.sep) if root is not None
             else [os.path.basename(stem)])
    return '/'.join(safe_name(part) for part in parts)


def face_name(name, k):
    """NAME of face ``k`` (numbered from 0) of picture ``name``: NAME_face<k>."""
    return '%s_face%d' % (name, k)


def track_name(name, k, n_tracks):
    """NAME of track ``k`` of clip ``name``: the clip's NAME when it follows one face (or the
    whole frame), NAME_face<k> when it may follow several (--max_faces > 1)."""
    return name if n_tracks <= 1 else face_name(name, k)
