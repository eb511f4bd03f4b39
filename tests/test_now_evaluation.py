"""python -m now_evaluation on a fake NoW folder (tests/make_fake_now.py): the numbers it
reports against distances computed independently (trimesh), missing and broken predictions,
--check, and the refusals."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

import now_evaluation
from smpl_webuser.flame_params import neutral_vertices
from smpl_webuser.serialization import load_model
from tests.make_fake_now import flame_landmarks, make_fake_now, write_prediction
from util.face.landmarks import load_static_embedding
from util.now.evaluate import Scan, scan_to_mesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def fake_now(tmp_path_factory, flame_assets):
    root = str(tmp_path_factory.mktemp('NOW'))
    truth = make_fake_now(root, flame_assets['flame_model'], flame_assets['static_embedding'],
                          subjects=2, seed=0)
    lines = open(os.path.join(root, 'imagepathsvalidation.txt')).read().split()
    return root, truth, lines


@pytest.fixture(scope='module')
def flame(flame_assets):
    model = load_model(flame_assets['flame_model'])
    return model, np.asarray(model.f, np.int64), load_static_embedding(
        flame_assets['static_embedding'])


def write_predictions(folder, fake_now, flame, seed=1, unit_scale=1.0):
    """Predictions for every image: the subject's FLAME shape, perturbed per image (metres
    times ``unit_scale``), with its 7 landmarks."""
    _, truth, lines = fake_now
    model, faces, static = flame
    rng = np.random.default_rng(seed)
    for line in lines:
        shape = truth[line.split('/')[0]]['shape'] + rng.normal(scale=0.3, size=10)
        v = neutral_vertices(model, shape) * unit_scale
        write_prediction(folder, line, v, faces, flame_landmarks(v, faces, static))
    return folder


def run(argv, capsys):
    code = now_evaluation.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def read_pp_like_the_official_reader(path):
    """Lines 9-15 of the .pp file, the x="..." y="..." z="..." attributes, as float32."""
    lines = open(path).read().splitlines()[8:15]
    return np.array([[float(re.search(r'\b%s="([^"]+)"' % a, line).group(1)) for a in 'xyz']
                     for line in lines], dtype=np.float32).astype(np.float64)


def independent_distances(points, vertices, faces):
    """Distance from each point to the mesh surface with trimesh's point-triangle routine,
    on every triangle that could be nearest (its bounding sphere reaches within the distance
    to the nearest vertex of a face, which is on the surface)."""
    tri = vertices[faces]
    centre = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centre[:, None], axis=2).max(axis=1)
    used = np.unique(faces)
    upper = cKDTree(vertices[used]).query(points)[0]
    # triangles out of every point's reach go first (only to save time)
    reach = cKDTree(points).query(centre)[0] - radius <= upper.max() + 1e-9
    tri, centre, radius = tri[reach], centre[reach], radius[reach]
    best = np.full(len(points), np.inf)
    for start in range(0, len(points), 256):
        chunk = slice(start, start + 256)
        gap = np.linalg.norm(points[chunk, None] - centre[None], axis=2) - radius[None]
        p_idx, f_idx = np.nonzero(gap <= upper[chunk, None] + 1e-9)
        closest = trimesh.triangles.closest_point(tri[f_idx], points[chunk][p_idx])
        d = np.linalg.norm(closest - points[chunk][p_idx], axis=1)
        np.minimum.at(best[chunk], p_idx, d)
    return best


def test_reported_numbers_match_independent_distances(tmp_path, fake_now, flame, capsys):
    root, _, lines = fake_now
    pred = write_predictions(str(tmp_path / 'PRED'), fake_now, flame)
    code, out, err = run(['--predictions', pred, '--dataset', root, '--workers', '2'], capsys)
    assert code == 0, err
    results = os.path.join(pred, 'results')
    summary = json.load(open(os.path.join(results, 'results.json')))
    per_image = {line: np.load(os.path.join(results, 'distances', os.path.splitext(line)[0]
                                            + '.npy'), allow_pickle=False) for line in lines}
    # pooled statistics of the per-image files, with numpy
    pooled = np.concatenate(list(per_image.values()))
    assert summary['overall']['images'] == len(lines) and summary['overall']['missing'] == 0
    assert summary['overall']['median'] == pytest.approx(np.median(pooled), rel=1e-12)
    assert summary['overall']['mean'] == pytest.approx(np.mean(pooled), rel=1e-12)
    assert summary['overall']['std'] == pytest.approx(np.std(pooled), rel=1e-12)
    selfie = np.concatenate([d for line, d in per_image.items() if '/selfie/' in line])
    assert summary['selfie']['median'] == pytest.approx(np.median(selfie), rel=1e-12)
    assert list(summary) == ['overall', 'multiview_neutral', 'multiview_expressions',
                             'multiview_occlusions', 'selfie']
    rows = list(csv.DictReader(open(os.path.join(results, 'results.csv'))))
    assert [r['challenge'] for r in rows] == list(summary)
    for row in rows:
        block = summary[row['challenge']]
        assert int(row['images']) == block['images'] and int(row['missing']) == 0
        for key in ('median', 'mean', 'std'):
            assert float(row[key]) == pytest.approx(block[key], abs=1e-6)
    with Image.open(os.path.join(results, 'cumulative_error.png')) as png:
        assert png.format == 'PNG' and png.size[0] > 400
    assert 'overall' in out and 'results in' in out
    # one image, measured again independently: trimesh's loaders and point-triangle
    # routine, the official reader's way of reading the .pp, the crop formula written out
    model, faces, static = flame
    for line in lines[-1:]:
        subject = line.split('/')[0]
        scan_obj = os.path.join(root, 'scans', subject, subject + '.obj')
        scan_v = np.asarray(trimesh.load(scan_obj, process=False).vertices)
        lmk = read_pp_like_the_official_reader(os.path.join(
            root, 'scans_lmks_onlypp', subject, subject + '_picked_points.pp'))
        bridge = (lmk[1] + lmk[2]) / 2
        centre = lmk[4] + 0.3 * (bridge - lmk[4])
        radius = 1.4 * (np.linalg.norm(lmk[0] - lmk[3]) + np.linalg.norm(bridge - lmk[4])) / 2
        cropped = scan_v[np.linalg.norm(scan_v - centre, axis=1) <= radius]
        assert len(cropped) == len(per_image[line]) > 1000
        stem = os.path.join(pred, os.path.splitext(line)[0])
        mesh = trimesh.load(stem + '.obj', process=False)
        pred_v, pred_f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        # the same alignment (the product's), then the distances another way
        _, (s, r, t) = scan_to_mesh(Scan(cropped, lmk), pred_v, pred_f, np.load(stem + '.npy'))
        expected = independent_distances(cropped, s * pred_v @ r.T + t, pred_f)
        np.testing.assert_allclose(per_image[line], expected, rtol=0, atol=1e-9)


def test_missing_and_broken_predictions_are_counted_missing(tmp_path, fake_now, flame, capsys):
    root, _, lines = fake_now
    pred = write_predictions(str(tmp_path / 'PRED'), fake_now, flame)
    stems = [os.path.join(pred, os.path.splitext(line)[0]) for line in lines]
    os.remove(stems[0] + '.obj')                                  # no mesh
    np.save(stems[1] + '.npy', np.zeros((5, 3)))                  # landmarks of a wrong shape
    with open(stems[2] + '.obj', 'w') as fh:                      # a mesh that does not load
        fh.write('v 1 2\nf 1 2 3\n')
    os.remove(stems[5] + '.npy')                                  # no landmarks
    stale = os.path.join(pred, 'results', 'distances', os.path.splitext(lines[0])[0] + '.npy')
    os.makedirs(os.path.dirname(stale))
    np.save(stale, np.ones(3))                                    # from an earlier run

    code, out, err = run(['--predictions', pred, '--dataset', root, '--check',
                          '--workers', '1'], capsys)
    assert code == 1
    assert out.strip() == '4 of 8 predictions usable, 4 missing or broken (val split)'
    problems = sorted(line for line in err.splitlines() if line.startswith('missing: '))
    assert len(problems) == 4
    assert any(stems[0] + '.obj: no predicted mesh' in p for p in problems)
    assert any(stems[1] + '.npy: landmarks of shape (5, 3)' in p for p in problems)
    assert any(stems[2] + '.obj' in p for p in problems)
    assert any(stems[5] + '.npy: no predicted landmarks' in p for p in problems)
    assert not os.path.exists(os.path.join(pred, 'results', 'results.json'))

    code, out, err = run(['--predictions', pred, '--dataset', root, '--workers', '1'], capsys)
    assert code == 1
    assert sorted(line for line in err.splitlines() if line.startswith('missing: ')) == problems
    summary = json.load(open(os.path.join(pred, 'results', 'results.json')))
    assert (summary['overall']['images'], summary['overall']['missing']) == (4, 4)
    by_challenge = {c: (b['images'], b['missing']) for c, b in summary.items() if c != 'overall'}
    assert by_challenge == {'multiview_neutral': (1, 1), 'multiview_expressions': (0, 2),
                            'multiview_occlusions': (1, 1), 'selfie': (2, 0)}
    assert summary['multiview_expressions']['median'] is None
    assert not os.path.exists(stale)
    written = sorted(os.path.relpath(os.path.join(d, f), os.path.join(pred, 'results',
                                                                       'distances'))
                     for d, _, fs in os.walk(os.path.join(pred, 'results', 'distances'))
                     for f in fs)
    assert written == sorted(os.path.splitext(lines[i])[0] + '.npy' for i in (3, 4, 6, 7))


def test_refusals_and_options(tmp_path, fake_now, flame, capsys):
    root, _, _ = fake_now
    pred = write_predictions(str(tmp_path / 'PRED'), fake_now, flame)
    for argv, message in (
            (['--split', 'test'], "--split test: NoW's test-set scans are not public"),
            (['--metrical'], '--metrical needs --unit'),
            (['--unit', 'mm'], '--unit applies only with --metrical'),
            (['--compare', 'x=%s' % tmp_path], 'holds no distances/'),
            (['--compare', 'nolabel'], 'expected LABEL=RESULTS_DIR'),
            (['--workers', '0'], '--workers must be at least 1')):
        code, out, err = run(['--predictions', pred, '--dataset', root] + argv, capsys)
        assert code == 2 and out == ''
        assert len(err.strip().splitlines()) == 1 and message in err, err
    code, _, err = run(['--predictions', str(tmp_path / 'nope'), '--dataset', root], capsys)
    assert code == 2 and 'nope: no such folder (--predictions)' in err
    empty = tmp_path / 'empty'
    empty.mkdir()
    code, _, err = run(['--predictions', pred, '--dataset', str(empty)], capsys)
    assert code == 2 and 'imagepathsvalidation.txt: no such file' in err
    # the test split's predictions can be checked before they are sent
    code, out, _ = run(['--predictions', pred, '--dataset', root, '--split', 'test',
                        '--check'], capsys)
    assert code == 0 and out.startswith('8 of 8 predictions usable')


def test_metrical_protocol_and_compare(tmp_path, fake_now, flame, capsys):
    """Non-metrical, then (as a command) metrical on the same predictions in centimetres,
    with the first run on its plot. The fake scans' scale is not the true one (0.95-1.05 x),
    so fixing the scale can only make the error larger."""
    root, _, _ = fake_now
    pred_m = write_predictions(str(tmp_path / 'metres'), fake_now, flame)
    pred_cm = write_predictions(str(tmp_path / 'centimetres'), fake_now, flame, unit_scale=100.0)
    code, _, err = run(['--predictions', pred_m, '--dataset', root, '--workers', '1'], capsys)
    assert code == 0, err
    env = dict(os.environ, PYTHONPATH=ROOT)
    second = subprocess.run([sys.executable, '-m', 'now_evaluation', '--predictions', pred_cm,
                             '--dataset', root, '--metrical', '--unit', 'cm', '--workers', '1',
                             '--compare', 'scaled=%s' % pred_m], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    scaled = json.load(open(os.path.join(pred_m, 'results', 'results.json')))['overall']
    metrical = json.load(open(os.path.join(pred_cm, 'results', 'results.json')))['overall']
    # per image the metrical optimum is over a subset of the transforms: a larger sum of
    # squares, so a larger pooled mean square
    assert metrical['mean'] ** 2 + metrical['std'] ** 2 > scaled['mean'] ** 2 + scaled['std'] ** 2
    assert os.path.getsize(os.path.join(pred_cm, 'results', 'cumulative_error.png')) > 1000
    shutil.rmtree(pred_cm)
