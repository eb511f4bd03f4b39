"""The run manifest, OUT/manifest.jsonl: one JSON line per input, appended as each finishes.

Each run starts the file afresh and writes (and flushes) a line the moment an input is done,
failed or skipped, so a run that is interrupted or killed still leaves a true record of what
finished. Lines: {"input", "status" (ok | failed | skipped | partial: a video cut short, its
frames kept), "error" (one line or null), "faces" (faces, or a video's tracks, processed with
--detect_faces, else null), "outputs" (paths relative to OUT), "seconds"}, and for a video
"frames" (frames written) and "settings" (the flags its outputs depend on, for
--skip_existing).
"""
import json
import os
import threading

from util.outputs.naming import MANIFEST


def manifest_line(source, status, error=None, faces=None, outputs=(), seconds=0.0, video=None):
    """One manifest record as a line of JSON text (ASCII; file names escaped as \\uXXXX);
    ``video``: {'frames', 'settings'} of a video, added to the record."""
    record = {'input': source, 'status': status, 'error': error, 'faces': faces,
              'outputs': [p.replace(os.sep, '/') for p in outputs],
              'seconds': round(float(seconds), 4)}
    record.update(video or {})
    return json.dumps(record) + '\n'


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


class Manifest:
    """Append-only writer of OUT/manifest.jsonl (a context manager; thread-safe appends)."""

    def __init__(self, out_folder):
        self.path = os.path.join(out_folder, MANIFEST)
        self._fh = None
        self._lock = threading.Lock()

    def __enter__(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            self._fh = open(self.path, 'w', encoding='ascii')
        except OSError as e:
            raise OSError('%s: cannot write the run manifest (%s)'
                          % (self.path, e.strerror or e)) from e
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def write_line(self, line):
        """Write a line made by manifest_line (elsewhere, e.g. on a Ray worker) and flush."""
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def append(self, source, status, error=None, faces=None, outputs=(), seconds=0.0,
               video=None):
        """Write one record and flush it to the OS at once."""
        self.write_line(manifest_line(source, status, error, faces, outputs, seconds, video))
