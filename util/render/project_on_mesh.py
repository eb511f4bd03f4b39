"""Project the input image onto the FLAME UV map (docs/formats.md §7)."""
import numpy as np
from numba import njit

from util.render.geometry import vertex_normals


def compute_texture_map(image, vertices, cam, texture_data, faces):
    """Copy image pixels onto the camera-facing texels of the UV map.

    image (H,W,3) uint8; vertices (V,3) as predicted (not yet shifted by cam.t);
    cam a util.face.camera.RenderCamera; texture_data the FLAME texture dict (docs/formats.md §7; see
    util.render.texture_data.load_texture_data for a checked one);
    faces (F,3) the mesh's faces (for the vertex normals).
    -> (img_size, img_size, 3) uint8 texture, zero where nothing was projected.
    Texels whose interpolated normal has z > 0 face away from the camera and are skipped;
    projected points are rounded (half to even) and kept only strictly inside the image.
    """
    image = np.ascontiguousarray(image)
    size = int(texture_data['img_size'])
    ids = np.asarray(texture_data['valid_pixel_ids'], dtype=np.int64).reshape(-1)
    tex_faces = np.asarray(texture_data['valid_pixel_3d_faces'], dtype=np.int64)  # (N,3)
    bary = np.asarray(texture_data['valid_pixel_b_coords'], dtype=np.float64)     # (N,3)
    x_coords = np.asarray(texture_data['x_coords'], dtype=np.int64).reshape(-1)
    y_coords = np.asarray(texture_data['y_coords'], dtype=np.int64).reshape(-1)
    vertices = np.asarray(vertices, dtype=np.float64)
    normals = vertex_normals(vertices, faces)
    texture = np.zeros((size, size, 3), dtype=np.uint8)
    _project_texels(image, vertices, normals, np.asarray(cam.t, dtype=np.float64), float(cam.f),
                    np.asarray(cam.c, dtype=np.float64), tex_faces, bary,
                    ids, y_coords, x_coords, texture)
    return texture


@njit(cache=True)
def _project_texels(image, vertices, normals, t, f, c, tex_faces, bary, ids, y_coords,
                    x_coords, texture):
    """Per texel: barycentric point and normal; camera-facing and strictly inside the image
    -> copy the pixel it projects to (rounded half to even) into texture[y_coords[ids],
    x_coords[ids]] (read here: no gathered copies of them)."""
    height, width = image.shape[0], image.shape[1]
    n_verts, size = vertices.shape[0], texture.shape[0]
    n_y, n_x = y_coords.shape[0], x_coords.shape[0]
    for i in range(tex_faces.shape[0]):
        a, b, d = tex_faces[i, 0], tex_faces[i, 1], tex_faces[i, 2]
        # numba does not bounds-check: bad texture data must not write outside the arrays
        texel = ids[i]
        if not (-n_y <= texel < n_y and -n_x <= texel < n_x):
            raise IndexError('texture data: valid_pixel_ids out of range (check it with '
                             'util.render.texture_data.check_texture_data)')
        row, col = y_coords[texel], x_coords[texel]  # negative ids count from the end
        if (min(a, b, d) < 0 or max(a, b, d) >= n_verts or not 0 <= row < size
                or not 0 <= col < size):
            raise ValueError('texture data index out of range (check it with '
                             'util.render.texture_data.check_texture_data)')
        w0, w1, w2 = bary[i, 0], bary[i, 1], bary[i, 2]
        if w0 * normals[a, 2] + w1 * normals[b, 2] + w2 * normals[d, 2] > 0:
            continue  # faces away from the camera
        px = w0 * vertices[a, 0] + w1 * vertices[b, 0] + w2 * vertices[d, 0] + t[0]
        py = w0 * vertices[a, 1] + w1 * vertices[b, 1] + w2 * vertices[d, 1] + t[1]
        pz = w0 * vertices[a, 2] + w1 * vertices[b, 2] + w2 * vertices[d, 2] + t[2]
        x = np.rint(f * px / pz + c[0])
        y = np.rint(f * py / pz + c[1])
        if 0 < x < width and 0 < y < height:
            for k in range(3):
                texture[row, col, k] = image[int(y), int(x), k]
