"""util.io.columns: rows appended on disk, and the .npz streamed from them, read back with
numpy's own loader."""
import zipfile

import numpy as np
import pytest

from util.io.columns import RowFile, write_npz


def test_rows_on_disk_come_back_as_written(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(7, 3, 2)).astype(np.float32)
    column = RowFile(str(tmp_path / 'a.raw'), (3, 2), np.float32)
    column.fill(2, np.nan)
    for row in rows:
        column.append(row)
    column.fill(1, np.nan)
    got = column.array()
    assert got.shape == (10, 3, 2) and got.dtype == np.float32
    assert np.isnan(got[:2]).all() and np.isnan(got[-1]).all()
    np.testing.assert_array_equal(got[2:9], rows)
    assert RowFile(str(tmp_path / 'e.raw'), (4,)).array().shape == (0, 4)
    with pytest.raises(ValueError, match='row of shape'):
        RowFile(str(tmp_path / 'b.raw'), (3,)).append(np.zeros(4))


def test_npz_streamed_from_row_files_is_what_np_load_reads(tmp_path):
    frames = RowFile(str(tmp_path / 'f.raw'), (), np.int64)
    found = RowFile(str(tmp_path / 'ok.raw'), (), bool)
    points = RowFile(str(tmp_path / 'p.raw'), (68, 2), np.float64)
    rng = np.random.default_rng(1)
    want = rng.normal(size=(5000, 68, 2))  # 5.4 MB: several copy chunks
    for k, row in enumerate(want):
        frames.append(3 * k)
        found.append(k % 3 != 0)
        points.append(row)
    path = str(tmp_path / 't.npz')
    write_npz(path, {'frame': frames, 'found': found, 'points': points,
                     'fps': np.float64(29.97), 'box': np.arange(8.).reshape(2, 4)}, chunk=4096)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(['box', 'fps', 'found', 'frame', 'points'])
        np.testing.assert_array_equal(npz['frame'], 3 * np.arange(5000))
        np.testing.assert_array_equal(npz['found'], np.arange(5000) % 3 != 0)
        np.testing.assert_array_equal(npz['points'], want)
        assert npz['fps'].shape == () and npz['fps'] == 29.97
        np.testing.assert_array_equal(npz['box'], np.arange(8.).reshape(2, 4))
    with zipfile.ZipFile(path) as archive:  # stored, as np.savez writes it
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
