"""NoW's numbers: median, mean and std of the scan-to-mesh distances, pooled over all
scan vertices of all images (per challenge and overall), and the results files' bytes.

results.json: {"overall": {"median", "mean", "std", "images", "missing"}, "<challenge>": ...}
(millimetres; ``images`` evaluated, ``missing`` without a usable prediction; the statistics
are null when nothing was evaluated). results.csv: challenge,images,missing,median,mean,std.
"""
import csv
import io
import json

import numpy as np

CSV_COLUMNS = ('challenge', 'images', 'missing', 'median', 'mean', 'std')


def pooled_stats(distances):
    """[(N_i,) arrays] -> {'median', 'mean', 'std'} of all values together (std with ddof 0,
    as numpy's default and the official script); None values when there are none."""
    values = np.concatenate([np.ravel(d) for d in distances]) if distances else np.zeros(0)
    if not len(values):
        return {'median': None, 'mean': None, 'std': None}
    return {'median': float(np.median(values)), 'mean': float(np.mean(values)),
            'std': float(np.std(values))}


def summarize(records, challenges):
    """records [(challenge, distances (N,) or None for a missing image)], challenges (the
    order of the report) -> {'overall': {...}, challenge: {...}} (results.json's dict); a
    challenge of the list with no image in ``records`` is left out."""
    def block(rows):
        found = [d for _, d in rows if d is not None]
        out = pooled_stats(found)
        out.update(images=len(found), missing=len(rows) - len(found))
        return out

    result = {'overall': block(records)}
    present = {c for c, _ in records}
    for challenge in list(challenges) + sorted(present - set(challenges)):
        if challenge in present:
            result[challenge] = block([r for r in records if r[0] == challenge])
    return result


def results_json(summary):
    """results.json bytes."""
    return (json.dumps(summary, indent=2) + '\n').encode('utf-8')


def results_csv(summary):
    """results.csv bytes: one row per block of ``summary`` (overall first), empty cells for
    statistics that do not exist."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for name, block in summary.items():
        writer.writerow([name] + ['' if block[k] is None else
                                  ('%.6f' % block[k] if isinstance(block[k], float) else block[k])
                                  for k in CSV_COLUMNS[1:]])
    return text.getvalue().encode('utf-8')


def cumulative_curve(distances, points=2000):
    """distances (N,) -> (x (P,), percent (P,)): the share of distances <= x, in percent, at
    P values of x spread over the sorted distances (the curve's exact steps, thinned)."""
    values = np.sort(np.ravel(distances))
    if not len(values):
        return np.zeros(0), np.zeros(0)
    at = np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).astype(np.int64))
    return values[at], 100.0 * (at + 1) / len(values)
