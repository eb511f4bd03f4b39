"""Where each output goes: the one place that names output files.

The panel is one per picture (NAME of the input image); every other kind is one per frame
(the image's NAME, or NAME_face<k> with --detect_faces).
"""
import os

from util.io.mesh_io import mtl_name
from util.pipeline.frames import face_name

# output kind -> (folder, file-name suffix); NAME is the picture's or the frame's name.
# 'texture_mtl' follows 'texture_obj' (util.io.mesh_io.mtl_name).
OUTPUT_FILES = {
    'panel': ('images', '.png'),
    'mesh': ('mesh', '.obj'),
    'params': ('params', '.npy'),
    'params_json': ('params', '.json'),
    'neutral': ('neutral_mesh', '.obj'),
    'texture': ('texture', '.png'),
    'texture_obj': ('texture', '.obj'),
    'landmarks_2d': ('landmarks', '_2d.txt'),
    'landmarks_3d': ('landmarks', '_3d.txt'),
}
PICTURE_KINDS = ('panel',)
# a video clip's outputs (docs/formats.md §14): 'video' per clip, the others per track
CLIP_FILES = {
    'video': ('video', '.mp4'),
    'track': ('params', '.npz'),
    'track_json': ('params', '.json'),
    'neutral': ('neutral_mesh', '.obj'),
}
FRAME_MESH = 'mesh/%s/%06d.obj'  # a track's mesh of video frame number k
MANIFEST = 'manifest.jsonl'


def requested_kinds(config):
    """The output kinds this run writes, in writing order (the panel always)."""
    kinds = ['panel']
    kinds += ['mesh'] if config.save_obj_file else []
    kinds += ['params', 'params_json'] if config.save_flame_parameters else []
    kinds += ['neutral'] if config.neutralize_expression else []
    kinds += ['texture', 'texture_mtl', 'texture_obj'] if config.save_texture else []
    kinds += ['landmarks_2d', 'landmarks_3d'] if config.save_landmarks else []
    return kinds


def wants_landmarks(config):
    """True when this run needs the landmark embeddings (to write or to draw landmarks)."""
    return bool(config.save_landmarks or config.draw_landmarks)


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
    or 'frame_mesh' of frame number ``index``) for the clip or track ``name``."""
    if kind == 'frame_mesh':
        return os.path.join(*(FRAME_MESH % (name, index)).split('/'))
    folder, suffix = CLIP_FILES[kind]
    return os.path.join(folder, name + suffix)


def clip_kinds(config):
    """The per-track output kinds a clip gets with this config (besides the video)."""
    return (['track'] + (['track_json'] if config.save_flame_parameters else [])
            + (['neutral'] if config.neutralize_expression else []))


def existing_outputs(out_folder, name, config, previous=None):
    """(relative paths, faces) of every requested output of the input named ``name`` when
    they all exist under ``out_folder`` (--skip_existing), else None. faces: how many faces
    they cover with --detect_faces, else None.

    With --detect_faces the number of faces is not known without detecting: the faces are
    NAME_face0, 1, ... as long as any requested output of theirs exists, and each of them must
    have them all. ``previous``, the input's line in the last run's manifest (if any), tells
    whether those outputs came with or without --detect_faces (its 'faces' is null without):
    outputs of the other mode are not reused. A picture's outputs are committed together
    (util.io.atomic.Staging; run util.io.atomic.recover_staging first to undo a killed
    commit), so the files present are a finished set.
    """
    def there(rel):
        return os.path.isfile(os.path.join(out_folder, rel))

    if previous is not None and (previous.get('faces') is None) == bool(config.detect_faces):
        return None
    kinds = frame_kinds(config)
    if config.detect_faces:
        frames = []
        while kinds and any(there(output_path(face_name(name, len(frames)), k)) for k in kinds):
            frames.append(face_name(name, len(frames)))
        if kinds and not frames:
            return None
        faces = len(frames) if kinds else (previous or {}).get('faces')
    else:
        frames, faces = [name], None
    paths = [output_path(name, 'panel')] + [output_path(f, k) for f in frames for k in kinds]
    return (paths, faces) if all(there(p) for p in paths) else None


# the flags a clip's outputs depend on beyond the files they make (npz contents, thinning,
# tracking, smoothing, drawing): a clip made with other values is not skipped
CLIP_SETTINGS = ('every_n_frames', 'max_frames', 'max_faces', 'min_face_size', 'save_landmarks',
                 'draw_landmarks', 'smooth', 'smooth_min_cutoff', 'smooth_beta',
                 'smooth_d_cutoff')


def clip_settings(config):
    """{flag: value} of CLIP_SETTINGS, as the manifest records them for a video."""
    return {name: getattr(config, name) for name in CLIP_SETTINGS}


def existing_clip_outputs(out_folder, name, config, previous):
    """(relative paths, faces, {'frames', 'settings'}) of a video's outputs when its previous
    manifest line (``previous``: status ok or skipped, with 'frames' and the same
    clip_settings) lists every output this config asks for and all of them exist under
    ``out_folder``, else None. The tracks are those the previous run wrote
    (params/TRACK.npz); outputs made with or without --detect_faces are not reused in the
    other mode."""
    if (previous.get('status') not in ('ok', 'skipped') or 'frames' not in previous
            or previous.get('settings') != clip_settings(config)
            or (previous.get('faces') is None) == bool(config.detect_faces)):
        return None
    listed = [p.replace('/', os.sep) for p in previous.get('outputs') or []]
    track_folder, track_suffix = CLIP_FILES['track']
    tracks = [os.path.basename(p)[:-len(track_suffix)] for p in listed
              if os.path.dirname(p) == track_folder and p.endswith(track_suffix)]
    needed = [clip_output_path(name, 'video')] + [
        clip_output_path(t, k) for t in tracks for k in clip_kinds(config)]
    meshes = {t: clip_output_path(t, 'frame_mesh', 0).rsplit(os.sep, 1)[0] + os.sep
              for t in tracks}
    if (not tracks or any(p not in listed for p in needed)
            or (config.save_obj_file and not all(any(p.startswith(m) for p in listed)
                                                  for m in meshes.values()))
            or not all(os.path.isfile(os.path.join(out_folder, p)) for p in listed)):
        return None
    return listed, previous.get('faces'), {'frames': previous['frames'],
                                           'settings': previous['settings']}


def finished_outputs(out_folder, name, config, previous=None):
    """--skip_existing: (relative paths, faces, video) of an input whose requested outputs
    all exist (existing_clip_outputs for a video the previous run recorded, existing_outputs
    otherwise; video, the manifest's video fields, is None for a photo), else None."""
    if previous is not None and 'frames' in previous:
        return existing_clip_outputs(out_folder, name, config, previous)
    found = existing_outputs(out_folder, name, config, previous)
    return None if found is None else found + (None,)
