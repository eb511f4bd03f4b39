"""A fake NoW dataset folder, in the real one's layout and file formats (docs/formats.md §17),
for the tests and the README's try-out: NoW itself is licensed and never part of the repo.

    python -m tests.make_fake_now --out NOW [--subjects 2] [--seed 0]
           [--flame_model generic_model.pkl --static_embedding flame_static_embedding.pkl]

(without the FLAME files, the synthetic ones of synthetic/flame.py are written next to NOW).

Per subject: a random FLAME shape; the scan is a dense, noisy resampling of that surface (each
triangle near the face cut into n x n, unwelded, every vertex moved by Gaussian noise) under a
random similarity into millimetres, as scans/<subject>/<subject>.obj; its 7 landmarks (FLAME's
static landmarks [19, 22, 25, 28, 16, 31, 37] under the same transform) as a MeshLab .pp
file. One photo per challenge: a crop of skimage's astronaut portrait with its face box as a
detected_face .npy (np.save of a dict, pickled with protocol 2 like the Python 2 originals,
numpy float64 values); the last subject's selfie box lies on the background instead (no face
in it). Both image lists list every image.
"""
import argparse
import datetime
import io
import os
import pickle

import cv2
import numpy as np

from smpl_webuser.flame_params import neutral_vertices
from smpl_webuser.serialization import load_model
from util.face.landmarks import barycentric_points, load_static_embedding
from util.io.mesh_io import write_obj
from util.now.files import CHALLENGES, IMAGE_LISTS, RELEASE

NOW_LANDMARKS = [19, 22, 25, 28, 16, 31, 37]  # of FLAME's 51 static landmarks
# the astronaut's face in skimage.data.astronaut() (512 x 512), x0, y0, x1, y1
ASTRONAUT_FACE = (170.0, 50.0, 280.0, 185.0)
BACKGROUND_BOX = (390.0, 330.0, 500.0, 465.0)   # her suit and the background: no face


def random_similarity(rng, scale_mm=1000.0):
    """-> (scale, rotation (3,3) proper, translation (3,)): metres to millimetres, a rotation
    within about 30 degrees of frontal, a translation of some centimetres."""
    axis = rng.normal(size=3)
    angle = np.radians(rng.uniform(5.0, 30.0))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    k /= np.linalg.norm(axis)
    rotation = np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)
    return scale_mm * rng.uniform(0.95, 1.05), rotation, rng.normal(scale=50.0, size=3)


def transform(similarity, points):
    scale, rotation, translation = similarity
    return scale * np.asarray(points) @ rotation.T + translation


def resample_surface(vertices, faces, keep, n, noise, rng):
    """Triangles ``keep`` (bool (F,)) of the mesh, each cut into n x n (unwelded grid), the
    vertices moved by Gaussian noise of std ``noise`` -> (V,3), (F',3)."""
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing='ij')
    inside = i + j <= n
    wb, wc = (i[inside] / n), (j[inside] / n)                     # (G,) grid weights
    index = -np.ones((n + 1, n + 1), dtype=np.int64)
    index[inside] = np.arange(inside.sum())
    cells = [(index[a, b], index[a + 1, b], index[a, b + 1]) for a in range(n)
             for b in range(n - a)]
    cells += [(index[a + 1, b], index[a + 1, b + 1], index[a, b + 1]) for a in range(n)
              for b in range(n - a - 1)]
    tri = vertices[faces[keep]]                                   # (T,3,3)
    pts = (tri[:, None, 0] + wb[None, :, None] * (tri[:, None, 1] - tri[:, None, 0])
           + wc[None, :, None] * (tri[:, None, 2] - tri[:, None, 0]))   # (T,G,3)
    g = pts.shape[1]
    out_faces = (np.arange(len(tri))[:, None, None] * g + np.array(cells)[None]).reshape(-1, 3)
    pts = pts.reshape(-1, 3)
    return pts + rng.normal(scale=noise, size=pts.shape), out_faces


def pp_text(points, mesh_name):
    """MeshLab's picked-points file for 7 points, as MeshLab writes it: the header lines
    (DOCTYPE, PickedPoints, DocumentData with DateTime, User, DataFileName, templateName),
    then one <point .../> line per point (the official reader takes lines 9-15 for them)."""
    now = datetime.datetime(2019, 1, 1, 12, 0, 0)
    lines = ['<!DOCTYPE PickedPoints>', '<PickedPoints>', ' <DocumentData>',
             '  <DateTime time="%s" date="%s"/>' % (now.strftime('%H:%M:%S'),
                                                     now.strftime('%Y-%m-%d')),
             '  <User name="fake"/>', '  <DataFileName name="%s"/>' % mesh_name,
             '  <templateName name=""/>', ' </DocumentData>']
    for k, (x, y, z) in enumerate(points):
        lines.append(' <point x="%.9g" y="%.9g" z="%.9g" active="1" name="%d"/>' % (x, y, z, k))
    lines.append('</PickedPoints>')
    return '\n'.join(lines) + '\n'


def box_npy_bytes(box):
    """A detected_face .npy: a 0-d object array holding {'left', 'top', 'right', 'bottom'}
    (numpy float64 values), pickled with protocol 2 as Python 2's np.save did."""
    data = np.empty((), dtype=object)
    data[()] = {k: np.float64(v) for k, v in zip(('left', 'top', 'right', 'bottom'), box)}
    header = {'descr': '|O', 'fortran_order': False, 'shape': ()}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(pickle.dumps(data, protocol=2))
    return buffer.getvalue()


def astronaut_photo(shift):
    """(image (H,W,3) uint8 RGB, its face box): a crop of the astronaut portrait."""
    from skimage import data  # test-only dependency
    dx, dy = shift
    image = data.astronaut()[dy:, dx:]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    return np.ascontiguousarray(image), (x0 - dx, y0 - dy, x1 - dx, y1 - dy)


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as fh:
        fh.write(data)


def flame_landmarks(vertices, faces, static):
    """(V,3) vertices -> (7,3) the NoW landmarks among the 51 static ones."""
    return barycentric_points(vertices[None], faces, static[0][NOW_LANDMARKS],
                              static[1][NOW_LANDMARKS])[0]


def write_subject(root, subject, scan_vertices, scan_faces, landmarks):
    """scans/<subject>/<subject>.obj and scans_lmks_onlypp/<subject>/<subject>_picked_points.pp."""
    obj = os.path.join(root, 'scans', subject, subject + '.obj')
    os.makedirs(os.path.dirname(obj), exist_ok=True)
    write_obj(obj, scan_vertices, scan_faces)
    write_file(os.path.join(root, 'scans_lmks_onlypp', subject, subject + '_picked_points.pp'),
               pp_text(landmarks, os.path.basename(obj)).encode('ascii'))


def write_image(root, line, image, box):
    """iphone_pictures/<line> (JPEG) and detected_face/<line as .npy>."""
    ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    write_file(os.path.join(root, RELEASE, 'iphone_pictures', line), jpeg.tobytes())
    write_file(os.path.join(root, RELEASE, 'detected_face', os.path.splitext(line)[0] + '.npy'),
               box_npy_bytes(box))


def write_prediction(pred_root, line, vertices, faces, landmarks):
    """A prediction in NoW's layout: PRED/subject/challenge/name.obj and .npy (7,3)."""
    stem = os.path.join(pred_root, os.path.splitext(line)[0])
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    write_obj(stem + '.obj', vertices, faces)
    np.save(stem + '.npy', np.asarray(landmarks, dtype=np.float64))


def make_fake_now(root, flame_model, static_embedding, subjects=2, seed=0, subdivisions=3,
                  noise_mm=0.2, shape_std=1.0):
    """Write the fake dataset under ``root`` -> {subject: {'shape' (S,), 'similarity'
    (scale, rotation, translation), 'landmarks' (7,3) mm}} (what each scan was made from)."""
    rng = np.random.default_rng(seed)
    model = load_model(flame_model)
    faces = np.asarray(model.f, dtype=np.int64)
    static = load_static_embedding(static_embedding)
    lines, truth = [], {}
    for s in range(subjects):
        subject = 'FaMoS_fake_%02d' % s
        shape = rng.normal(scale=shape_std, size=10)
        verts = neutral_vertices(model, shape)
        similarity = random_similarity(rng)
        lmk = flame_landmarks(verts, faces, static)
        # only the triangles near the face: the scan need not hold the back of the head
        near = np.linalg.norm(verts[faces].mean(axis=1) - lmk[4], axis=1) < 0.12
        scan_v, scan_f = resample_surface(verts, faces, near, subdivisions,
                                          noise_mm / similarity[0], rng)
        scan_lmk = transform(similarity, lmk)
        write_subject(root, subject, transform(similarity, scan_v), scan_f, scan_lmk)
        truth[subject] = {'shape': shape, 'similarity': similarity, 'landmarks': scan_lmk}
        for c, challenge in enumerate(CHALLENGES):
            line = '%s/%s/IMG_%04d.jpg' % (subject, challenge, 100 + c)
            image, box = astronaut_photo((8 * c + 4 * s, 6 * c))
            if s == subjects - 1 and challenge == 'selfie':
                box = BACKGROUND_BOX
            write_image(root, line, image, box)
            lines.append(line)
    for name in IMAGE_LISTS.values():
        write_file(os.path.join(root, name), ('\n'.join(lines) + '\n').encode('ascii'))
    return truth


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.make_fake_now',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='the fake NoW folder to write')
    parser.add_argument('--subjects', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--flame_model', default='')
    parser.add_argument('--static_embedding', default='')
    args = parser.parse_args(argv)
    flame_model, static_embedding = args.flame_model, args.static_embedding
    if not flame_model:
        from synthetic.flame import write_flame_assets
        assets = write_flame_assets(os.path.join(args.out, 'synthetic_flame'), seed=0)
        flame_model, static_embedding = assets['flame_model'], assets['static_embedding']
    make_fake_now(args.out, flame_model, static_embedding, args.subjects, args.seed)
    print('fake NoW dataset in %s' % args.out)


if __name__ == '__main__':
    main()
