"""Project the input image onto the FLAME UV map (formats §7), and the vertex normals it uses."""
import numpy as np

from util.camera import project, to_camera


def vertex_normals(v, faces):
    """(V,3) vertices, (F,3) faces -> (V,3) unit normals.

    Area-weighted: each vertex sums the unnormalised normals cross(v1 - v0, v2 - v0) of its
    faces, then is normalised; with outward winding the normals point out of the surface.
    Vertices in no face (or only degenerate ones) get a zero normal.
    """
    v = np.asarray(v, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    tri = v[faces]                                                   # (F,3,3)
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F,3), |n| = 2 * area
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def compute_texture_map(image, vertices, cam, texture_data, faces):
    """Copy image pixels onto the camera-facing texels of the UV map.

    image (H,W,3) uint8; vertices (V,3) as predicted (not yet shifted by cam.t);
    cam a util.camera.RenderCamera; texture_data the FLAME texture dict (formats §7);
    faces (F,3) the mesh's faces (for the vertex normals).
    -> (img_size, img_size, 3) uint8 texture, zero where nothing was projected.
    Texels whose interpolated normal has z > 0 face away from the camera and are skipped;
    projected points are rounded (half to even) and kept only strictly inside the image.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    size = int(texture_data['img_size'])
    ids = np.asarray(texture_data['valid_pixel_ids']).reshape(-1).astype(np.int64)
    tex_faces = np.asarray(texture_data['valid_pixel_3d_faces'], dtype=np.int64)  # (N,3)
    bary = np.asarray(texture_data['valid_pixel_b_coords'], dtype=np.float64)     # (N,3)
    x_coords = np.asarray(texture_data['x_coords']).reshape(-1).astype(np.int64)
    y_coords = np.asarray(texture_data['y_coords']).reshape(-1).astype(np.int64)

    vertices = np.asarray(vertices, dtype=np.float64)
    normals = vertex_normals(vertices, faces)
    points = np.einsum('nk,nkc->nc', bary, vertices[tex_faces])   # (N,3)
    point_n = np.einsum('nk,nkc->nc', bary, normals[tex_faces])   # (N,3)
    uv = np.rint(project(to_camera(points, cam), cam.f, cam.c)).astype(np.int64)  # (N,2) (x, y)
    keep = ((point_n[:, 2] <= 0) & (uv[:, 0] > 0) & (uv[:, 0] < width)
            & (uv[:, 1] > 0) & (uv[:, 1] < height))

    texture = np.zeros((size, size, 3), dtype=np.uint8)
    texels = ids[keep]
    texture[y_coords[texels], x_coords[texels]] = image[uv[keep, 1], uv[keep, 0]]
    return texture
