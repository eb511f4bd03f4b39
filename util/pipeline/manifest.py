"""The run manifest, OUT/manifest.jsonl: one JSON line per input, appended as each finishes.

Each run starts the file afresh and writes a line (straight to the file, unbuffered) the moment
an input is done, failed or skipped, so a run that is interrupted or killed still leaves a true
record of what finished. Lines: {"input", "status" (ok | failed | skipped | partial: a video
cut short, its frames kept), "error" (one line or null), "faces" (faces, or a video's tracks,
processed with --detect_faces, else null), "outputs" (paths relative to OUT), "sizes" (the
byte size of each output, in the same order: what --skip_existing checks), "seconds"}, and for
a video "frames" (frames written), "frames_with_face" (of those, the frames where a face was
found) and "settings" (the flags its outputs depend on, for --skip_existing).

A line that cannot be written (a full disk) is cut off again, so the file holds whole lines
only, and the manifest keeps the first failure (``error``): the run stops and says so.
"""
import collections
import json
import os
import threading

from util.errors import one_line
from util.io.no_follow import create_file, open_folder
from util.outputs.naming import MANIFEST
from util.outputs.report import record_images


def manifest_line(source, status, error=None, faces=None, outputs=None, seconds=0.0,
                  video=None):
    """One manifest record as a line of JSON text (ASCII; file names escaped as \\uXXXX).
    outputs: {relative path: size in bytes}; ``video``: {'frames', 'frames_with_face',
    'settings'} of a video, added to the record."""
    outputs = outputs or {}
    record = {'input': source, 'status': status, 'error': error, 'faces': faces,
              'outputs': [p.replace(os.sep, '/') for p in outputs],
              'sizes': [int(size) for size in outputs.values()],
              'seconds': round(float(seconds), 4)}
    record.update(video or {})
    return json.dumps(record) + '\n'


def recorded_outputs(record):
    """{relative path (os.sep): size} of a manifest record; {} when it lists none or its sizes
    do not pair up with its outputs (a line of an older run, or edited)."""
    paths, sizes = record.get('outputs'), record.get('sizes')
    if not (isinstance(paths, list) and isinstance(sizes, list) and len(paths) == len(sizes)
            and all(isinstance(p, str) for p in paths)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)):
        return {}
    return {p.replace('/', os.sep): s for p, s in zip(paths, sizes)}


def read_manifest(out_folder):
    """{input: record} of the manifest a previous run left in ``out_folder`` ({} if none;
    unreadable lines, e.g. the last one of a killed run, are skipped)."""
    records = {}
    try:
        with open(os.path.join(out_folder, MANIFEST), encoding='ascii', errors='replace') as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get('input'), str):
                    records[record['input']] = record
    except OSError:
        pass
    return records


Unfound = collections.namedtuple('Unfound', 'source frames_with_face frames')
Unfound.__doc__ = """A clip of this run where the face was found in some frames only."""


class Manifest:
    """Writer of OUT/manifest.jsonl (a context manager; thread-safe appends).

    It also keeps the tally the summary line is made of, from the very lines it is handed
    (both engines): ``statuses`` (a Counter of each line's status), ``unfound`` ([Unfound] of
    the clips where the face was missing in some frames), ``written`` (lines on disk) and
    ``error`` (the first write failure, one line naming the file, or None).
    """

    def __init__(self, out_folder):
        self.path = os.path.join(out_folder, MANIFEST)
        self.out_folder = out_folder
        self.statuses = collections.Counter()
        self.images = 0  # what its lines stand for (util.outputs.report.record_images)
        self.unfound = []
        self.written = 0
        self.error = None
        self._fd = None
        self._size = 0
        self._lock = threading.Lock()

    def __enter__(self):
        try:
            folder = open_folder(self.out_folder)
            try:  # written afresh, never through a link (util.io.no_follow)
                self._fd = create_file(MANIFEST, folder, self.path, truncate=True)
            finally:
                os.close(folder)
        except OSError as e:
            raise OSError('%s: cannot write the run manifest (%s)'
                          % (self.path, e.strerror or one_line(e))) from e
        return self

    def __exit__(self, *exc):
        closing = 'cannot finish writing the run manifest (%s); its last lines may be lost'
        try:  # a full disk may only show now (delayed allocation, network file systems)
            os.fsync(self._fd)
        except OSError as e:
            self._failed(closing, e)
        finally:
            try:
                os.close(self._fd)
            except OSError as e:
                self._failed(closing, e)

    def _failed(self, what, error):
        """Keep the first failure: 'OUT/manifest.jsonl: ' + ``what`` % the OS's reason."""
        if self.error is None:
            self.error = '%s: %s' % (self.path, what % (error.strerror or one_line(error)))

    def write_line(self, line):
        """Write a line made by manifest_line (here, or elsewhere, e.g. on a Ray worker) and
        count it -> True when it is on disk. After a failure nothing more is written (the
        file stays a prefix of the run's lines)."""
        record = json.loads(line)
        data = line.encode('ascii')
        with self._lock:
            self.statuses[record['status']] += 1
            self.images += record_images(record)
            frames, found = record.get('frames'), record.get('frames_with_face')
            if record['status'] in ('ok', 'partial') and frames and found is not None \
                    and found < frames:
                self.unfound.append(Unfound(record['input'], found, frames))
            if self.error is not None:
                return False
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as e:
                self._failed('cannot write the run manifest (%%s); it lists the first %d '
                             'input(s) of this run and the run stops' % self.written, e)
                try:  # whole lines only: cut the part that got through
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    pass
                return False
            self._size += len(data)
            self.written += 1
            return True

    def append(self, source, status, error=None, faces=None, outputs=None, seconds=0.0,
               video=None):
        """Write one record (see manifest_line) -> True when it is on disk."""
        return self.write_line(manifest_line(source, status, error, faces, outputs, seconds,
                                             video))
