"""--skip_existing: which inputs already have every requested output (docs/formats.md §12).

A picture's outputs are committed together (util.io.atomic.Staging) and a clip's manifest line
lists its outputs, so the files present are a finished set, once a killed commit is undone
(util.io.atomic.recover_staging).
"""
import os

from util.io.atomic import recover_staging
from util.outputs.naming import (CLIP_FILES, clip_kinds, clip_output_path, face_name,
                                 frame_kinds, output_path)
from util.pipeline.manifest import read_manifest


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
    paths += [output_path(f, 'face_panel') for f in frames] if len(frames) > 1 else []
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


def split_existing(entries, clashes, config):
    """--skip_existing: ([(index, pending Entry)], [(skipped Entry, its outputs, faces,
    video)]). An entry whose NAME clashes with an earlier one is never skipped (it is
    refused). Without --skip_existing every entry is pending."""
    if not config.skip_existing:
        return list(enumerate(entries)), []
    recover_staging(config.out_folder)  # undo a killed run's half-done commit first
    previous = read_manifest(config.out_folder)
    pending, skipped = [], []
    for k, entry in enumerate(entries):
        found = None if k in clashes else finished_outputs(
            config.out_folder, entry.name, config, previous.get(entry.path))
        if found is None:
            pending.append((k, entry))
        else:
            skipped.append((entry,) + found)
    return pending, skipped
