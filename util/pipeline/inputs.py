"""The command's input -> the list of inputs to process ([Entry]: path and output NAME), and
which of them clash.

The input is an image or video file, a folder (``recursive``: with its sub-folders), a glob
pattern, a ``.txt`` list with one path per line, or a ``.csv`` / ``.parquet`` table with a
``path`` column. Nothing is read here beyond the listing: a bad file fails later as its own
item, without stopping the listing or the batch.
"""
import collections
import csv
import glob
import os

from util.errors import one_line
from util.outputs.naming import output_name

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.gif')
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv',
                    '.flv', '.3gp', '.ts', '.mts', '.m2ts', '.ogv', '.mxf', '.y4m')
LIST_EXTENSION = '.txt'
TABLE_EXTENSIONS = ('.csv', '.parquet')  # a table with a 'path' column
PATH_COLUMN = 'path'
GLOB_CHARACTERS = '*?['

Entry = collections.namedtuple('Entry', 'path name error', defaults=(None,))
Entry.__doc__ = """One input: its path, and the output NAME its outputs get; ``error``: why
it cannot be an input (a table row without a path: its path then says which row), or None."""


class InputError(ValueError):
    """The command's input names nothing to process; the message is one line."""


def _is_input(name):
    """A file a folder or pattern lists: an image or video extension, not hidden."""
    return name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS) and not name.startswith('.')


def _inside(path, folder):
    """True when ``path`` is ``folder`` or below it (both resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _folder_entries(folder, recursive, exclude=None):
    """Image and video files of ``folder`` (sorted; hidden files and folders, and the folder
    ``exclude`` (the output folder) skipped) -> [Entry]."""
    if not recursive:
        names = sorted(n for n in os.listdir(folder) if _is_input(n))
        return [Entry(os.path.join(folder, n), output_name(n)) for n in names]
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.') and not (
            exclude and _inside(os.path.join(dirpath, d), exclude)))
        entries += [Entry(os.path.join(dirpath, n), output_name(os.path.join(dirpath, n), folder))
                    for n in sorted(filenames) if _is_input(n)]
    return entries


def _list_file_entries(list_path):
    """A .txt list: one path per line; blank lines and lines starting with '#' skipped;
    relative paths are relative to the list file's folder. Missing paths are kept (each
    fails as its own item)."""
    try:
        # utf-8-sig: lists saved by Windows editors start with a byte-order mark
        with open(list_path, encoding='utf-8-sig', errors='surrogateescape') as fh:
            lines = [line.strip() for line in fh]
    except OSError as e:
        raise InputError('%s: cannot read this list file (%s)' % (list_path, e.strerror)) from e
    return _relative_entries(list_path, [line for line in lines
                                         if line and not line.startswith('#')])


def _relative_entries(list_path, paths):
    """[Entry] of the paths a list file names, relative ones taken from its folder."""
    base = os.path.dirname(list_path)
    return [Entry(os.path.join(base, p), output_name(os.path.join(base, p))) for p in paths]


def _no_path_column(table_path, columns):
    return InputError('%s: no %r column (its columns: %s); name the column of paths %r'
                      % (table_path, PATH_COLUMN, ', '.join(map(repr, columns)) or 'none',
                         PATH_COLUMN))


def _csv_column(table_path):
    """The 'path' column of a .csv with a header row, as text ('' where a row has none)."""
    with open(table_path, newline='', encoding='utf-8-sig', errors='surrogateescape') as fh:
        rows = list(csv.reader(fh))
    header, rows = (rows[0], rows[1:]) if rows else ([], [])
    if PATH_COLUMN not in header:
        raise _no_path_column(table_path, header)
    column = header.index(PATH_COLUMN)
    return [row[column] if len(row) > column else '' for row in rows]


def _parquet_column(table_path):
    """The 'path' column of a .parquet table as text (None for a null): text columns as
    they are, integer ones written as decimals; any other type is refused."""
    import pyarrow  # only a Parquet list needs it (requirements-ray.txt has it)
    import pyarrow.parquet
    names = pyarrow.parquet.read_schema(table_path).names
    if PATH_COLUMN not in names:
        raise _no_path_column(table_path, names)
    column = pyarrow.parquet.read_table(table_path, columns=[PATH_COLUMN]).column(PATH_COLUMN)
    kind = column.type
    if pyarrow.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if not (pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind)
            or pyarrow.types.is_integer(kind)):
        raise InputError('%s: its %r column holds %s values, not text (file paths)'
                         % (table_path, PATH_COLUMN, kind))
    return column.cast(pyarrow.string()).to_pylist()


def _table_entries(table_path):
    """[Entry] of a .csv (with a header row) or .parquet table's 'path' column, read as
    text; relative paths from the table's folder. A row without a path (an empty cell, a
    null) is an Entry that fails with one line naming the row."""
    try:
        if table_path.lower().endswith('.csv'):
            paths = _csv_column(table_path)
        else:
            paths = _parquet_column(table_path)
    except ImportError as e:
        raise InputError('%s: reading a Parquet list needs pyarrow (pip install -r '
                         'requirements-ray.txt)' % table_path) from e
    except InputError:
        raise
    except (OSError, ValueError, IndexError) as e:
        raise InputError('%s: cannot read this list of paths (%s)'
                         % (table_path, one_line(e))) from e
    base = os.path.dirname(table_path)
    return [Entry(os.path.join(base, p), output_name(os.path.join(base, p))) if p else
            Entry('%s row %d' % (table_path, k + 1), '',
                  'no path in its %r column (%s)' % (PATH_COLUMN, 'null' if p is None
                                                     else 'empty'))
            for k, p in enumerate(paths)]


def _glob_root(pattern):
    """The folders of ``pattern`` before its first glob character ('photos/**/*.jpg' ->
    'photos'): matches keep their sub-folders below it in their NAME, as with --recursive."""
    parts = pattern.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in GLOB_CHARACTERS))
    return os.sep.join(parts[:fixed]) or ('.' if not os.path.isabs(pattern) else os.sep)


def input_entries(img_path, recursive=False, exclude=None):
    """The command's input -> [Entry] to process, in order.

    A folder gives its image and video files; a ``.txt`` file its listed paths (a ``.csv`` or
    ``.parquet`` table those of its 'path' column: a table without one is refused); a path
    that does not exist but contains a glob character (* ? [) the image and video files it
    matches (``**`` spans folders); any other file is one input. Files inside ``exclude``
    (the output folder) are left out of folders and patterns. Raises InputError (one line)
    when there is nothing to process, so the command can say so before any model loads.
    """
    if os.path.isdir(img_path):
        entries = _folder_entries(img_path, recursive, exclude)
        if not entries:
            raise InputError('%s: no image or video files in this folder%s'
                             % (img_path, '' if recursive else ' (--recursive looks in '
                                'sub-folders)'))
        return entries
    if os.path.isfile(img_path):
        if img_path.lower().endswith((LIST_EXTENSION,) + TABLE_EXTENSIONS):
            entries = (_list_file_entries(img_path) if img_path.lower().endswith(LIST_EXTENSION)
                       else _table_entries(img_path))
            if not entries:
                raise InputError('%s: this list file names no inputs' % img_path)
            return entries
        return [Entry(img_path, output_name(img_path))]
    if any(ch in img_path for ch in GLOB_CHARACTERS):
        root = _glob_root(img_path)
        matches = sorted(p for p in glob.glob(img_path, recursive=True)
                         if os.path.isfile(p) and _is_input(os.path.basename(p))
                         and not (exclude and _inside(p, exclude)))
        if not matches:
            raise InputError('%s: no image or video file matches this pattern' % img_path)
        return [Entry(p, output_name(p, root)) for p in matches]
    raise InputError('%s: no such file or folder' % img_path)


def clashing(entries):
    """{index: earlier Entry} for each entry whose NAME an earlier entry already has ('a.jpg'
    and 'a.png' both write images/a.png): those are refused, never overwritten."""
    first, clashes = {}, {}
    for k, entry in enumerate(entries):
        if entry.error:  # not an input: it writes nothing
            continue
        other = first.setdefault(entry.name, entry)
        if other is not entry:
            clashes[k] = other
    return clashes


def clash_error(other, name):
    """The error of an input whose outputs would overwrite those of ``other``."""
    return ValueError('outputs would overwrite those of %s (same name %s)' % (other, name))


class NameClaims:
    """Output names taken so far in a run: (kind, NAME) -> the input that took it. Kinds: 'panel'
    (images/NAME.png), 'video' (video/NAME.mp4), 'frame' (a photo frame's or a video track's
    mesh, params and neutral mesh: the same files)."""

    def __init__(self):
        self._owners = {}

    def claim(self, kind, name, source):
        """Take (kind, ``name``) for ``source``; raise clash_error if another input has it."""
        other = self._owners.setdefault((kind, name), source)
        if other != source:
            raise clash_error(other, name)
