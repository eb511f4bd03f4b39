"""FLAME texture data (``texture_data_512.npy``, docs/formats.md §7): loaded safely, checked.

Every index in the file is checked against the mesh and the texture size once, at load time,
so a malformed file gets one clear error instead of wrong textures or out-of-range writes.
"""
import numpy as np

from util.io.safe_pickle import load_npy_dict

KEYS = ('img_size', 'x_coords', 'y_coords', 'valid_pixel_ids', 'valid_pixel_3d_faces',
        'valid_pixel_b_coords', 'vt', 'ft')


class TextureDataError(ValueError):
    """The texture data file lacks a key or holds an inconsistent array."""


def _in_range(source, name, values, stop):
    if values.size and (values.min() < 0 or values.max() >= stop):
        raise TextureDataError('%s: %s has values outside [0, %d)' % (source, name, stop))


def check_texture_data(data, n_verts, n_faces, source='<texture data>'):
    """Texture data dict -> canonical dict (int64 indices, float64 weights), checked against a
    mesh of ``n_verts`` vertices and ``n_faces`` faces. Raises TextureDataError naming ``source``."""
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise TextureDataError('%s: missing key(s) %s in the texture data'
                               % (source, ', '.join(missing)))
    try:
        out = {'img_size': int(np.asarray(data['img_size']).reshape(-1)[0])}
        for key in ('x_coords', 'y_coords', 'valid_pixel_ids'):
            out[key] = np.asarray(data[key]).astype(np.int64).reshape(-1)
        out['valid_pixel_3d_faces'] = np.asarray(data['valid_pixel_3d_faces']).astype(np.int64)
        out['ft'] = np.asarray(data['ft']).astype(np.int64)
        out['valid_pixel_b_coords'] = np.asarray(data['valid_pixel_b_coords'], dtype=np.float64)
        out['vt'] = np.asarray(data['vt'], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as exc:
        raise TextureDataError('%s: unreadable texture data (%s)' % (source, exc)) from exc
    n_texels = len(out['valid_pixel_ids'])
    shapes = {'valid_pixel_3d_faces': (n_texels, 3), 'valid_pixel_b_coords': (n_texels, 3),
              'x_coords': out['y_coords'].shape, 'ft': (n_faces, 3)}
    for key, shape in shapes.items():
        if out[key].shape != shape:
            raise TextureDataError('%s: %s has shape %s, expected %s'
                                   % (source, key, out[key].shape, shape))
    if out['vt'].ndim != 2 or out['vt'].shape[1] != 2:
        raise TextureDataError('%s: vt has shape %s, expected (T, 2)' % (source, out['vt'].shape))
    if not np.isfinite(out['valid_pixel_b_coords']).all():
        raise TextureDataError('%s: valid_pixel_b_coords are not all finite' % source)
    _in_range(source, 'valid_pixel_ids', out['valid_pixel_ids'], len(out['x_coords']))
    for key in ('x_coords', 'y_coords'):
        _in_range(source, key + ' of valid pixels', out[key][out['valid_pixel_ids']],
                  out['img_size'])
    _in_range(source, 'valid_pixel_3d_faces', out['valid_pixel_3d_faces'], n_verts)
    _in_range(source, 'ft', out['ft'], len(out['vt']))
    return out


def load_texture_data(path, n_verts, n_faces):
    """Checked, canonical texture data of the ``.npy`` at ``path`` (see check_texture_data)."""
    return check_texture_data(load_npy_dict(path), n_verts, n_faces, source=path)
