"""Arrays that grow one row at a time on disk, and an .npz written from them as a stream.

A video's track has one row per frame; keeping the rows in files instead of in memory keeps
memory flat however long the clip. ``RowFile`` appends fixed-size rows to a raw file (which is
exactly the data part of an .npy: C order, no header) and reads them back memory-mapped;
``write_npz`` copies each into a stored (uncompressed) zip entry after its .npy header, the
layout ``np.savez`` writes and ``np.load`` reads.
"""
import shutil
import zipfile

import numpy as np


class RowFile:
    """Rows of ``shape`` and ``dtype``, appended to the raw file ``path`` (created empty)."""

    def __init__(self, path, shape=(), dtype=np.float64):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.rows = 0
        self._fh = open(path, 'wb')

    def append(self, row):
        """Add one row (anything that converts to ``shape`` and ``dtype``)."""
        value = np.asarray(row, dtype=self.dtype)
        if value.shape != self.shape:
            raise ValueError('%s: row of shape %s, expected %s' % (self.path, value.shape,
                                                                   self.shape))
        self._fh.write(np.ascontiguousarray(value).tobytes())
        self.rows += 1

    def fill(self, n, value):
        """Add ``n`` rows with every element ``value`` (NaN for rows without a result)."""
        if n > 0:
            self._fh.write(np.full((n,) + self.shape, value, dtype=self.dtype).tobytes())
            self.rows += n

    def close(self):
        if not self._fh.closed:
            self._fh.close()

    def array(self, mode='r'):
        """The rows written so far, (rows,) + shape, memory-mapped (``mode`` 'r+' to change
        them in place); the file is closed for appending first."""
        self.close()
        if self.rows == 0:  # mmap cannot map an empty file
            return np.zeros((0,) + self.shape, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode=mode,
                         shape=(self.rows,) + self.shape)


def write_npz(path, arrays, chunk=1 << 20):
    """Write ``arrays`` {name: RowFile or array-like} to ``path`` as an .npz (stored, not
    compressed), streaming RowFile data from disk in ``chunk``-byte pieces."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(name + '.npy', 'w', force_zip64=True) as entry:
                if isinstance(value, RowFile):
                    value.close()
                    header = {'descr': np.lib.format.dtype_to_descr(value.dtype),
                              'fortran_order': False, 'shape': (value.rows,) + value.shape}
                    np.lib.format.write_array_header_1_0(entry, header)
                    with open(value.path, 'rb') as raw:
                        shutil.copyfileobj(raw, entry, chunk)
                else:
                    np.lib.format.write_array(entry, np.asarray(value), allow_pickle=False)
