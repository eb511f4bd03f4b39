"""--skip_existing: which inputs already have every requested output (docs/formats.md §12).

A picture's outputs are committed together (util.io.atomic.Staging) and the last run's manifest
line of an input lists its outputs with their sizes: an input is skipped only when each output
it needs is listed there and the file on disk is a regular file of that size (a truncated or
emptied output, or one the manifest does not vouch for, is made again). A killed commit is
undone first (util.io.atomic.recover_staging).
"""
import os
import stat

from util.io.atomic import recover_staging
from util.outputs.naming import (CLIP_FILES, clip_kinds, clip_output_path, face_name,
                                 frame_kinds, output_path)
from util.pipeline.manifest import read_manifest, recorded_outputs


def intact(out_folder, rel, recorded):
    """Is output ``rel`` under ``out_folder`` a regular file (not a link) of the size the
    manifest recorded (``recorded``: {relative path: size})?"""
    if rel not in recorded:
        return False
    try:
        st = os.lstat(os.path.join(out_folder, rel))
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == recorded[rel]


def existing_outputs(out_folder, name, config, previous=None):
    """({relative path: size}, faces) of every requested output of the input named ``name``
    when they are all intact under ``out_folder`` (--skip_existing; see intact), else None.
    faces: how many faces they cover with --detect_faces, else None.

    With --detect_faces the number of faces is not known without detecting: the faces are
    NAME_face0, 1, ... as long as any requested output of theirs exists, and each of them must
    have them all. ``previous``, the input's line in the last run's manifest (if any), tells
    whether those outputs came with or without --detect_faces (its 'faces' is null without):
    outputs of the other mode are not reused, and it holds the sizes each output must have:
    without it nothing is skipped.
    """
    def there(rel):
        return os.path.isfile(os.path.join(out_folder, rel))

    if previous is None or (previous.get('faces') is None) == bool(config.detect_faces):
        return None
    recorded = recorded_outputs(previous)
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
    if not all(intact(out_folder, p, recorded) for p in paths):
        return None
    return {p: recorded[p] for p in paths}, faces


# the flags a clip's outputs depend on beyond the files they make (npz contents, thinning,
# tracking, smoothing, drawing): a clip made with other values is not skipped
CLIP_SETTINGS = ('every_n_frames', 'max_frames', 'max_faces', 'min_face_size', 'save_landmarks',
                 'draw_landmarks', 'smooth', 'smooth_min_cutoff', 'smooth_beta',
                 'smooth_d_cutoff')


def clip_settings(config):
    """{flag: value} of CLIP_SETTINGS, as the manifest records them for a video."""
    return {name: getattr(config, name) for name in CLIP_SETTINGS}


def existing_clip_outputs(out_folder, name, config, previous):
    """({relative path: size}, faces, the manifest's video fields) of a video's outputs when
    its previous manifest line (``previous``: status ok or skipped, with 'frames' and the same
    clip_settings) lists every output this config asks for and all of them are intact under
    ``out_folder`` (see intact), else None. The tracks are those the previous run wrote
    (params/TRACK.npz); outputs made with or without --detect_faces are not reused in the
    other mode."""
    if (previous.get('status') not in ('ok', 'skipped') or 'frames' not in previous
            or previous.get('settings') != clip_settings(config)
            or (previous.get('faces') is None) == bool(config.detect_faces)):
        return None
    recorded = recorded_outputs(previous)
    listed = list(recorded)
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
            or not all(intact(out_folder, p, recorded) for p in listed)):
        return None
    video = {key: previous[key] for key in ('frames', 'frames_with_face', 'settings')
             if key in previous}
    return recorded, previous.get('faces'), video


def finished_outputs(out_folder, name, config, previous=None):
    """--skip_existing: ({relative path: size}, faces, video) of an input whose requested
    outputs are all intact (existing_clip_outputs for a video the previous run recorded,
    existing_outputs otherwise; video, the manifest's video fields, is None for a photo),
    else None."""
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
        found = None if k in clashes or entry.error else finished_outputs(
            config.out_folder, entry.name, config, previous.get(entry.path))
        if found is None:
            pending.append((k, entry))
        else:
            skipped.append((entry,) + found)
    return pending, skipped
