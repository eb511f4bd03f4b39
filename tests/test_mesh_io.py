"""util.io.mesh_io: OBJ / PLY files checked against trimesh and hand-written files."""
import os
import struct

import numpy as np
import pytest
import trimesh

from util.io.mesh_io import Mesh, MeshError, load_mesh, read_obj, read_ply, write_obj


def _random_mesh(seed=0, n_verts=300, n_faces=500):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n_verts, 3)) * np.array([1e-3, 1.0, 1e3])
    f = np.array([rng.choice(n_verts, 3, replace=False) for _ in range(n_faces)])
    return v, f


def test_write_obj_read_by_trimesh_keeps_order_and_values(tmp_path):
    v, f = _random_mesh()
    path = str(tmp_path / 'mesh.obj')
    write_obj(path, v, f)
    other = trimesh.load(path, process=False)
    assert len(other.vertices) == len(v) and len(other.faces) == len(f)
    assert np.array_equal(np.asarray(other.vertices), v)  # repr-exact floats
    assert np.array_equal(np.asarray(other.faces), f)
    with open(path) as fh:
        first = fh.readline().split()
    assert first[0] == 'v' and float(first[1]) == v[0, 0]
    assert [name for name in os.listdir(tmp_path)] == ['mesh.obj']  # no temporary left over


def test_float32_vertices_read_back_exactly_in_float32(tmp_path):
    v, f = _random_mesh(seed=3)
    v32 = v.astype(np.float32)
    path = str(tmp_path / 'mesh32.obj')
    write_obj(path, v32, f)
    other = np.loadtxt([line for line in open(path) if line.startswith('v ')], usecols=(1, 2, 3))
    assert np.array_equal(other.astype(np.float32), v32)
    longest = max(len(x) for line in open(path) if line.startswith('v ') for x in line.split()[1:])
    assert longest <= 16  # float32 text, not float64's 17 significant digits


def test_obj_round_trip_with_uvs_and_material(tmp_path):
    v, f = _random_mesh(seed=1)
    rng = np.random.default_rng(2)
    vt = rng.random((200, 2))
    ft = rng.integers(0, 200, size=f.shape)
    path = str(tmp_path / 'textured.obj')
    Mesh(v, f, vt, ft, texture_filepath='some/where/textured.png').write_obj(path)
    back = read_obj(path)
    assert np.array_equal(back.v, v) and np.array_equal(back.f, f)
    assert np.array_equal(back.vt, vt) and np.array_equal(back.ft, ft)
    text = open(path).read()
    assert text.startswith('mtllib textured.mtl\n') and 'usemtl material_0\n' in text
    assert 'f %d/%d %d/%d %d/%d\n' % tuple(np.stack([f[0] + 1, ft[0] + 1], 1).ravel()) in text
    mtl = open(tmp_path / 'textured.mtl').read()
    assert 'newmtl material_0' in mtl and 'map_Kd textured.png' in mtl
    other = trimesh.load(path, process=False)
    assert len(other.vertices) >= len(v)  # trimesh may split vertices on UV seams
    write_obj(str(tmp_path / 'plain.obj'), v, f)
    plain = read_obj(str(tmp_path / 'plain.obj'))
    assert plain.vt is None and plain.ft is None and np.array_equal(plain.f, f)


def test_read_obj_corner_formats_and_polygons(tmp_path):
    path = tmp_path / 'hand.obj'
    path.write_text('# comment\no thing\n'
                    'v 0 0 0\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\nv 0 0 1\n'
                    'vt 0 0\nvt 1 0\nvt 1 1\nvn 0 0 1\ns off\n'
                    'f 1 2 3\n'
                    'f 1/1 2/2 3/3\n'
                    'f 1/1/1 3/3/1 4/2/1\n'
                    'f 1//1 2//1 5//1\n'
                    'f 1 2 3 4 5\n')
    mesh = read_obj(str(path))
    assert mesh.v.shape == (5, 3) and mesh.v[2].tolist() == [1, 1, 0]
    assert mesh.f.tolist() == [[0, 1, 2], [0, 1, 2], [0, 2, 3], [0, 1, 4],
                               [0, 1, 2], [0, 2, 3], [0, 3, 4]]
    assert mesh.ft is None  # some faces have no texture indices


@pytest.mark.parametrize('loose', [False, True])
@pytest.mark.parametrize('corner, uv', [('%d', False), ('%d/%d', True), ('%d/%d/%d', True),
                                       ('%d//%d', False)])
def test_read_obj_files_of_one_corner_form(tmp_path, corner, uv, loose):
    """Files whose faces all have one corner form, written tightly (one space, as this
    project writes them: read a keyword at a time) or loosely (tabs, double spaces, normals:
    read line by line): the values as written either way, CRLF line ends, exponents, signs."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(7, 3)) * [1e-3, 1.0, 1e5]
    vt = rng.uniform(size=(9, 2))
    f = rng.integers(0, 7, (6, 3))
    ft = rng.integers(0, 9, (6, 3))
    fields = {'%d': lambda a, t: (a,), '%d/%d': lambda a, t: (a, t),
              '%d/%d/%d': lambda a, t: (a, t, 1), '%d//%d': lambda a, t: (a, 1)}[corner]
    gap = '\t ' if loose else ' '
    lines = ['# made by hand', 'mtllib x.mtl'] + (['vn 0 0 1'] if loose else [])
    lines += ['v %r%s%r %r' % (p[0], gap, p[1], p[2]) for p in v.tolist()]
    lines += ['vt %r %r' % tuple(p) for p in vt.tolist()] + ['usemtl m']
    lines += ['f ' + ' '.join(corner % fields(a + 1, t + 1) for a, t in zip(fa, fta))
              for fa, fta in zip(f, ft)]
    path = tmp_path / 'u.obj'
    path.write_text('\r\n'.join(lines) + '\r\n')
    mesh = read_obj(str(path))
    assert np.array_equal(mesh.v, v) and np.array_equal(mesh.f, f)
    if uv:
        assert np.array_equal(mesh.vt, vt) and np.array_equal(mesh.ft, ft)
    else:
        assert mesh.vt is None and mesh.ft is None
    bad = ['f %d %d 9' % (1, 2) if corner == '%d' else 'f ' + ' '.join([corner % fields(9, 1)] * 3)]
    path.write_text('\n'.join(lines + bad) + '\n')  # out of range, in either reading
    with pytest.raises(MeshError, match='index out of range'):
        read_obj(str(path))
    path.write_text('\n'.join(lines + ['v 1 2 x']) + '\n')
    with pytest.raises(MeshError, match=r'u\.obj:%d: bad v line' % (len(lines) + 1)):
        read_obj(str(path))


def _ply_header(fmt, n_verts, n_faces, count_type='uchar', index_type='int',
                list_name='vertex_indices'):
    return ('ply\nformat %s 1.0\ncomment hand made\nelement vertex %d\nproperty float x\n'
            'property float y\nproperty float z\nproperty uchar red\nelement face %d\n'
            'property list %s %s %s\nelement edge 1\nproperty int vertex1\nproperty int vertex2\n'
            'end_header\n' % (fmt, n_verts, n_faces, count_type, index_type, list_name)).encode()


VERTS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.5]], dtype=np.float32)
POLYS = [[0, 1, 2], [0, 2, 3, 1]]
TRIS = [[0, 1, 2], [0, 2, 3], [0, 3, 1]]


def test_read_ply_ascii(tmp_path):
    path = tmp_path / 'a.ply'
    body = ''.join('%r %r %r 200\n' % tuple(map(float, p)) for p in VERTS)
    body += ''.join('%d %s\n' % (len(p), ' '.join(map(str, p))) for p in POLYS) + '0 1\n'
    path.write_bytes(_ply_header('ascii', 4, 2) + body.encode())
    mesh = read_ply(str(path))
    assert np.array_equal(mesh.v, VERTS) and mesh.f.tolist() == TRIS


@pytest.mark.parametrize('endian, name', [('<', 'binary_little_endian'),
                                          ('>', 'binary_big_endian')])
def test_read_ply_binary(tmp_path, endian, name):
    path = tmp_path / 'b.ply'
    body = b''.join(struct.pack(endian + 'fffB', *p, 7) for p in VERTS)
    body += b''.join(struct.pack(endian + 'I%di' % len(p), len(p), *p) for p in POLYS)
    body += struct.pack(endian + 'ii', 0, 1)
    path.write_bytes(_ply_header(name, 4, 2, 'uint', 'int', 'vertex_index') + body)
    mesh = load_mesh(str(path))
    assert np.array_equal(mesh.v, VERTS) and mesh.f.tolist() == TRIS


def test_read_ply_agrees_with_trimesh(tmp_path):
    v, f = _random_mesh(seed=3)
    path = str(tmp_path / 'm.ply')
    trimesh.Trimesh(v, f, process=False).export(path)  # binary little endian
    mesh = read_ply(path)
    other = trimesh.load(path, process=False)
    assert np.array_equal(mesh.v, other.vertices) and np.array_equal(mesh.f, other.faces)
    assert np.array_equal(mesh.f, f)
    np.testing.assert_allclose(mesh.v, v, rtol=1e-7)  # trimesh stores float32


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    v, f = _random_mesh(seed=4)
    path = str(tmp_path / 'out.obj')
    write_obj(path, v, f)
    before = open(path).read()

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(MeshError, match='out.obj: cannot write'):
        write_obj(path, v * 2, f)
    assert open(path).read() == before
    assert os.listdir(tmp_path) == ['out.obj']


@pytest.mark.parametrize('name, content, pattern', [
    ('missing.obj', None, 'cannot read'),
    ('bad.obj', 'v 0 0 x\n', r'bad\.obj:1: bad v line'),
    ('range.obj', 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n', 'index out of range'),
    ('short.obj', 'v 0 0 0\nf 1 1\n', 'needs 3 corners'),
    ('junk.ply', 'not a ply', 'unreadable PLY'),
    ('cut.ply', 'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n'
                'property float z\nend_header\n0 0 0\n1 1\n', 'unreadable PLY'),
    ('m.stl', 'solid', "unknown mesh format '.stl'"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, name, content, pattern):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(MeshError, match=pattern) as err:
        load_mesh(str(path))
    assert str(path) in str(err.value) and '\n' not in str(err.value)


def test_write_obj_rejects_bad_input(tmp_path):
    v, f = _random_mesh(seed=5)
    with pytest.raises(MeshError, match='index out of range'):
        write_obj(str(tmp_path / 'x.obj'), v, f + len(v))
    with pytest.raises(MeshError, match='vt and ft must be given together'):
        write_obj(str(tmp_path / 'x.obj'), v, f, vt=np.zeros((3, 2)))
    assert not os.listdir(tmp_path)
