"""Smooth a FLAME parameter track over time with the One-Euro filter (pure numpy).

Why: per-frame estimates jitter from frame to frame. The One-Euro filter (Casiez, Roussel,
Vogel, CHI 2012) is an exponential smoother whose cutoff frequency rises with the speed of the
signal: slow motion is smoothed hard (little jitter), fast motion barely (little lag).

Per scalar column, with x^ the filtered value and dx^ the filtered derivative:
    alpha(cutoff, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi cutoff)
    first row of a run:  x^ = x,  dx^ = 0
    next rows:           dx^_i = dx^_{i-1} + alpha(d_cutoff, dt) ((x_i - x^_{i-1}) / dt - dx^_{i-1})
                         cutoff_i = min_cutoff + beta |dx^_i|
                         x^_i = x^_{i-1} + alpha(cutoff_i, dt) (x_i - x^_{i-1})
A constant run therefore comes out bit for bit unchanged (every step adds alpha * 0).

A track is a dict of (T, ...) arrays, one row per frame (see ``smooth_track``).
"""
import numpy as np

TRACK_KEYS = ('time_s', 'found', 'cam', 'pose', 'shape', 'expression')
FILTERED_KEYS = ('cam', 'pose', 'expression')  # move over time; 'shape' (identity) does not


def _check_parameters(min_cutoff, beta, d_cutoff):
    """Raise ValueError unless min_cutoff > 0, d_cutoff > 0 and beta >= 0 (all finite)."""
    for name, value, low_ok in (('min_cutoff', min_cutoff, False), ('d_cutoff', d_cutoff, False),
                                ('beta', beta, True)):
        value = float(value)
        if not np.isfinite(value) or value < 0 or (value == 0 and not low_ok):
            raise ValueError('%s must be a finite number %s 0, got %r'
                             % (name, '>=' if low_ok else '>', value))


def _check_times(times, n_rows):
    """times (T,) -> (T,) float64; raise ValueError unless T == n_rows and strictly increasing."""
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (n_rows,):
        raise ValueError('times must have shape (%d,), got %s' % (n_rows, times.shape))
    if not np.all(np.isfinite(times)) or not np.all(np.diff(times) > 0):
        raise ValueError('times must be finite and strictly increasing')
    return times


def _alpha(cutoff, dt):
    """cutoff (...) Hz, dt (...) s, broadcastable -> (...) smoothing factor in (0, 1)."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _runs(ok):
    """ok (T,) bool -> [(start, stop)] of every maximal run of True rows, in order."""
    edges = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _filter_run(x, t, min_cutoff, beta, d_cutoff):
    """x (N,D) finite float64, t (N,) strictly increasing, N >= 1 -> (N,D) float64, filtered
    from scratch at x[0]."""
    out = np.empty_like(x)
    out[0] = x[0]
    dt = np.diff(t)                         # (N-1,)
    a_d = _alpha(d_cutoff, dt)              # (N-1,) depends on time only: computed once
    a_min = _alpha(min_cutoff, dt)          # (N-1,) the value factor when beta == 0
    x_hat = x[0]
    dx_hat = np.zeros(x.shape[1])
    for i in range(1, len(x)):
        step = x[i] - x_hat                 # (D,)
        if beta:
            dx_hat = dx_hat + a_d[i - 1] * (step / dt[i - 1] - dx_hat)
            a = _alpha(min_cutoff + beta * np.abs(dx_hat), dt[i - 1])
        else:
            a = a_min[i - 1]                # the derivative cannot change the cutoff: skip it
        x_hat = x_hat + a * step
        out[i] = x_hat
    return out


def one_euro(values, times, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
    """values (T,D) float (NaN rows = frames without a result), times (T,) seconds, strictly
    increasing -> (T,D) float64, filtered along T, each column independently.

    Each run of consecutive finite rows is filtered on its own, starting afresh at its first row
    (after a gap the face may be somewhere else); rows with any NaN stay all-NaN. min_cutoff
    (Hz) sets the smoothing of slow motion, beta (s) how fast the cutoff rises with speed,
    d_cutoff (Hz) the smoothing of the speed estimate. Bad parameters, times or shapes raise
    ValueError.
    """
    _check_parameters(min_cutoff, beta, d_cutoff)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError('values must be a (T, D) array, got shape %s' % (values.shape,))
    times = _check_times(times, len(values))
    out = np.full(values.shape, np.nan)
    # inf counts as missing too: it would poison the whole rest of the run
    for start, stop in _runs(np.all(np.isfinite(values), axis=1)):
        out[start:stop] = _filter_run(values[start:stop], times[start:stop],
                                      min_cutoff, beta, d_cutoff)
    return out


def _float_dtype(array):
    """array -> its dtype if floating (kept), else float64 (NaN rows need a float)."""
    return array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)


def _check_track(track):
    """track dict -> (found (T,) bool, {key: (T,K) array} of the four parameter arrays);
    raise ValueError on a missing key or an inconsistent shape."""
    missing = [key for key in TRACK_KEYS if key not in track]
    if missing:
        raise ValueError('track lacks key(s) %s' % ', '.join(missing))
    found = np.asarray(track['found'])
    if found.ndim != 1 or found.dtype != np.bool_:
        raise ValueError("track['found'] must be a (T,) bool array, got %s %s"
                         % (found.dtype, found.shape))
    params = {}
    for key in FILTERED_KEYS + ('shape',):
        array = np.asarray(track[key])
        if array.ndim != 2 or len(array) != len(found):
            raise ValueError('track[%r] must have shape (%d, K), got %s'
                             % (key, len(found), array.shape))
        params[key] = array
    if params['cam'].shape[1] != 3:
        raise ValueError("track['cam'] must have shape (T, 3), got %s" % (params['cam'].shape,))
    return found, params


def smooth_track(track, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
    """track: dict of arrays with at least 'time_s' (T,), 'found' (T,) bool, 'cam' (T,3),
    'pose' (T,P), 'shape' (T,S), 'expression' (T,E) (NaN rows where found is False) ->
    a new dict (input not modified; other keys copied unchanged): 'cam', 'pose' and
    'expression' filtered with one_euro over 'time_s'; 'shape' replaced on every found row by
    the per-component median of 'shape' over the found rows (the identity is constant over a
    clip); rows where found is False stay NaN; 'found' and the frame count unchanged.
    The dtype of each parameter array is kept (e.g. float32 in, float32 out).

    'found' decides: a row where it is False comes out NaN even if it held numbers, and breaks
    the run there. Other keys are the same objects as in the input (not deep copies).
    """
    _check_parameters(min_cutoff, beta, d_cutoff)
    found, params = _check_track(track)
    widths = [params[key].shape[1] for key in FILTERED_KEYS]
    # one pass over T for all filtered columns (they are independent): (T, 3+P+E)
    stacked = np.concatenate([params[key].astype(np.float64) for key in FILTERED_KEYS], axis=1)
    stacked[~found] = np.nan
    filtered = np.split(one_euro(stacked, track['time_s'], min_cutoff, beta, d_cutoff),
                        np.cumsum(widths)[:-1], axis=1)
    out = dict(track)
    for key, array in zip(FILTERED_KEYS, filtered):
        out[key] = array.astype(_float_dtype(params[key]))
    shape = params['shape']
    out['shape'] = np.full(shape.shape, np.nan, dtype=_float_dtype(shape))
    if found.any():
        out['shape'][found] = median_rows(shape, found)
    return out


def median_rows(column, found):
    """Per-component median (D,) float64 of (T,D) ``column`` over the rows where ``found``
    (T,) is True, one component at a time (T values in memory, not (T,D): ``column`` may be
    memory-mapped from disk)."""
    rows = np.flatnonzero(np.asarray(found))
    return np.array([np.median(np.asarray(column[:, j], dtype=np.float64)[rows])
                     for j in range(column.shape[1])])
