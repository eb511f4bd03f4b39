"""util.io.glb_read against glTF binaries written by an independent writer (tests/glb_writer.py:
packed, interleaved with a byte stride, sparse, normalized int16 targets) and against trimesh."""
import numpy as np
import pytest
import trimesh

from glb_writer import glb_bytes
from util.io.glb_read import GlbError, parse_glb, read_glb


def glb_case(seed=0, n=40):
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(n, 3)).astype(np.float32)
    triangles = rng.integers(0, n, (25, 3))
    targets = [np.zeros((n, 3), np.float32) for _ in range(3)]
    for t in targets:
        rows = rng.choice(n, 9, replace=False)
        t[rows] = rng.uniform(-0.5, 0.5, (9, 3))
    return positions, triangles, targets


@pytest.mark.parametrize('layout', [{}, {'stride': 20}, {'sparse': True},
                                    {'normalized': True}])
def test_glb_reader_reads_what_an_independent_writer_wrote(layout):
    positions, triangles, targets = glb_case()
    data = glb_bytes(positions, triangles, targets, names=['exp00', 'exp01', 'exp02'],
                     weights=[0.5, -1.25, 2.0], **layout)
    mesh = parse_glb(data, 'case.glb')
    assert np.array_equal(mesh.positions, positions)
    assert np.array_equal(mesh.indices, triangles)
    want = np.stack(targets)
    if layout.get('normalized'):
        want = np.round(want * 32767).astype(np.int16) / np.float32(32767)
    np.testing.assert_allclose(mesh.targets, want, rtol=0, atol=1e-7)
    assert mesh.target_names == ['exp00', 'exp01', 'exp02']
    assert mesh.weights.tolist() == [0.5, -1.25, 2.0]
    assert mesh.uvs is None and mesh.image is None


def test_glb_reader_reads_the_texture_coordinates_and_image():
    positions, triangles, targets = glb_case(seed=2)
    uvs = np.random.default_rng(3).uniform(size=(len(positions), 2)).astype(np.float32)
    png = b'\x89PNG\r\n\x1a\n not really, but bytes all the same'
    mesh = parse_glb(glb_bytes(positions, triangles, targets, uvs=uvs, png=png), 'tex.glb')
    assert np.array_equal(mesh.uvs, uvs)
    assert mesh.image == ('image/png', png)
    assert np.array_equal(mesh.positions, positions) and len(mesh.targets) == 3


def test_glb_reader_agrees_with_trimesh(tmp_path):
    positions, triangles, targets = glb_case(seed=1)
    path = tmp_path / 'x.glb'
    path.write_bytes(glb_bytes(positions, triangles, targets))
    mesh = read_glb(str(path))
    other = trimesh.load(str(path), force='mesh', process=False)
    np.testing.assert_array_equal(mesh.positions, np.asarray(other.vertices, np.float32))
    np.testing.assert_array_equal(mesh.indices, other.faces)
    assert mesh.target_names == ['target0', 'target1', 'target2']  # no names in the file
    assert mesh.weights.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize('change, message', [
    (lambda d: b'glTx' + d[4:], 'not a glTF binary'),
    (lambda d: d[:len(d) // 2], 'cut short'),
    (lambda d: d[:4] + (1).to_bytes(4, 'little') + d[8:], 'glTF version 1'),
])
def test_glb_reader_errors_are_one_line_naming_the_file(tmp_path, change, message):
    positions, triangles, targets = glb_case()
    path = tmp_path / 'bad.glb'
    path.write_bytes(change(glb_bytes(positions, triangles, targets)))
    with pytest.raises(GlbError, match=message) as err:
        read_glb(str(path))
    assert str(path) in str(err.value) and '\n' not in str(err.value)
    outside = glb_bytes(positions, triangles, extra_json={'buffers': [
        {'byteLength': 10, 'uri': 'mesh.bin'}]})
    with pytest.raises(GlbError, match='not self-contained'):
        parse_glb(outside, 'x.glb')
    with pytest.raises(GlbError, match='cannot read'):
        read_glb(str(tmp_path / 'missing.glb'))
