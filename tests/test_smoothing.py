"""util.face.smoothing: the One-Euro filter against a scalar reference written from the paper, its
effect on jitter and lag, gaps, and smooth_track's contract."""
import copy
import math

import numpy as np
import pytest

from util.face.smoothing import one_euro, smooth_track


class ReferenceOneEuro:
    """One scalar column, in the style of the authors' reference code: one call per sample,
    scalar Python floats, alpha written as r / (r + 1) with r = 2 pi cutoff dt and the update
    as a blend a x + (1 - a) x_prev (the same formulas as the paper, arranged differently)."""

    def __init__(self, min_cutoff, beta, d_cutoff):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.t_prev = self.x_prev = self.dx_prev = None

    @staticmethod
    def _factor(dt, cutoff):
        r = 2 * math.pi * cutoff * dt
        return r / (r + 1)

    def __call__(self, x, t):
        if self.t_prev is None:
            self.t_prev, self.x_prev, self.dx_prev = t, x, 0.0
            return x
        dt = t - self.t_prev
        a_d = self._factor(dt, self.d_cutoff)
        dx = (x - self.x_prev) / dt
        dx_hat = a_d * dx + (1 - a_d) * self.dx_prev
        a = self._factor(dt, self.min_cutoff + self.beta * abs(dx_hat))
        x_hat = a * x + (1 - a) * self.x_prev
        self.t_prev, self.x_prev, self.dx_prev = t, x_hat, dx_hat
        return x_hat


def reference(values, times, min_cutoff, beta, d_cutoff):
    """(T,D) finite values -> (T,D): a fresh ReferenceOneEuro per column, sample by sample."""
    out = np.empty((len(values), values.shape[1]))
    for d in range(values.shape[1]):
        f = ReferenceOneEuro(min_cutoff, beta, d_cutoff)
        for i in range(len(values)):
            out[i, d] = f(float(values[i, d]), float(times[i]))
    return out


def irregular_times(rng, n, lo=0.005, hi=0.1):
    return np.cumsum(rng.uniform(lo, hi, n)) + rng.uniform(0, 100)


PARAMS = [(1.0, 0.0, 1.0), (0.3, 0.0, 2.0), (1.0, 0.5, 1.0), (2.5, 3.0, 0.7),
          (0.05, 0.01, 5.0)]


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('min_cutoff, beta, d_cutoff', PARAMS)
def test_one_euro_matches_scalar_reference(seed, min_cutoff, beta, d_cutoff):
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(0, 1, (120, 5)), axis=0) * rng.uniform(0.1, 10, 5)
    times = irregular_times(rng, 120)
    got = one_euro(values, times, min_cutoff, beta, d_cutoff)
    assert got.shape == (120, 5) and got.dtype == np.float64
    want = reference(values, times, min_cutoff, beta, d_cutoff)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * max(1.0, np.abs(values).max()))
    # it really filtered (the reference is not the identity)
    assert np.abs(got[1:] - values[1:]).max() > 1e-3


def test_one_euro_accepts_float32_and_lists():
    rng = np.random.default_rng(7)
    values = rng.normal(size=(30, 2)).astype(np.float32)
    times = np.arange(30) / 30.0
    got = one_euro(values.tolist(), times.tolist(), 1.0, 0.2, 1.0)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, reference(values.astype(np.float64), times, 1.0, 0.2, 1.0),
                               rtol=0, atol=1e-12)


def test_noisy_sine_jitter_drops_and_signal_stays_close():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0                                     # 30 fps, 10 s
    clean = np.sin(2 * np.pi * 0.2 * t)[:, None] * [1.0, 1.0, 1.0, 1.0]
    sigma = 0.2
    noisy = clean + rng.normal(0, sigma, clean.shape)
    smooth = one_euro(noisy, t, min_cutoff=1.0, beta=0.3, d_cutoff=1.0)
    jitter_ratio = np.var(np.diff(noisy, axis=0)) / np.var(np.diff(smooth, axis=0))
    assert jitter_ratio > 10        # measured 17.3 (seed 0); >= 15.8 over 200 seeds
    noise_rms = np.sqrt(np.mean((noisy - clean) ** 2))
    error_rms = np.sqrt(np.mean((smooth - clean) ** 2))
    assert error_rms < 0.7 * noise_rms  # measured 0.48; <= 0.59 over 200 seeds


CONSTANTS = [0.1, -3.7, 1e5, math.pi, 0.0, -1e-7]


@pytest.mark.parametrize('min_cutoff, beta, d_cutoff', PARAMS)
def test_constant_track_is_unchanged_bit_for_bit(min_cutoff, beta, d_cutoff):
    times = irregular_times(np.random.default_rng(1), 200)
    values = np.tile(CONSTANTS, (200, 1))
    got = one_euro(values, times, min_cutoff, beta, d_cutoff)
    assert np.array_equal(got, values)


def test_constant_track_with_beta_and_float32_keeps_exact_values():
    values = np.tile(np.float32([0.1, -3.7, 1e5, math.pi]), (50, 1))
    got = one_euro(values, np.arange(50) / 30.0, 0.7, 2.0, 1.3)
    assert np.array_equal(got.astype(np.float32), values)


def test_gaps_restart_the_filter_and_stay_nan():
    rng = np.random.default_rng(3)
    n = 60
    values = rng.normal(0, 1, (n, 3)) + np.linspace(0, 5, n)[:, None]
    times = irregular_times(rng, n)
    values[0:2] = np.nan          # leading gap
    values[20:23] = np.nan        # a gap in the middle
    values[35, 1] = np.nan        # one NaN component: the whole row is a gap
    values[40] = [np.inf, 0, 0]   # inf counts as missing too
    values[42] = np.nan           # leaves row 41 as a one-row run
    values[58:] = np.nan          # trailing gap
    got = one_euro(values, times, 1.0, 0.5, 1.0)
    gap = np.zeros(n, bool)
    gap[[0, 1, 20, 21, 22, 35, 40, 42, 58, 59]] = True
    assert np.isnan(got[gap]).all()
    assert np.isfinite(got[~gap]).all()
    runs = [(2, 20), (23, 35), (36, 40), (41, 42), (43, 58)]
    for start, stop in runs:
        assert np.array_equal(got[start], values[start])  # restart: first row passes through
        np.testing.assert_allclose(  # the run as if it were the whole clip
            got[start:stop], reference(values[start:stop], times[start:stop], 1.0, 0.5, 1.0),
            rtol=0, atol=1e-12)
        assert np.array_equal(got[start:stop],
                              one_euro(values[start:stop], times[start:stop], 1.0, 0.5, 1.0))


def test_beta_reduces_lag_on_a_ramp():
    t = np.arange(90) / 30.0        # 3 s at 30 fps
    speed = 2.0                     # units / s
    ramp = (speed * t)[:, None]
    lag_0 = ramp[-1, 0] - one_euro(ramp, t, 1.0, 0.0, 1.0)[-1, 0]
    lag_b = ramp[-1, 0] - one_euro(ramp, t, 1.0, 1.0, 1.0)[-1, 0]
    # beta = 0 is a plain exponential smoother: its steady lag is speed * tau exactly
    assert lag_0 == pytest.approx(speed / (2 * math.pi * 1.0), rel=1e-6)
    assert 0 < lag_b < lag_0 / 3    # measured 0.0645 against 0.318 (4.9x less)


def make_track(rng, n=40, dtype=np.float32, found=None):
    if found is None:
        found = np.ones(n, bool)
        found[[i for i in (0, 9, 10, 11, 25) if i < n]] = False
    track = {
        'time_s': np.arange(n) / 25.0,
        'found': found,
        'cam': rng.normal([5.0, 0.0, 0.0], 0.1, (n, 3)),
        'pose': rng.normal(0, 0.2, (n, 6)),
        'shape': rng.normal(0, 1, (n, 10)),
        'expression': rng.normal(0, 1, (n, 7)),
        'frame_index': np.arange(n) * 2,
        'source': 'clip.mp4',
    }
    for key in ('cam', 'pose', 'shape', 'expression'):
        track[key] = track[key].astype(dtype)
        track[key][~found] = np.nan
    return track


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_smooth_track_contract(dtype):
    rng = np.random.default_rng(11)
    track = make_track(rng, dtype=dtype)
    before = copy.deepcopy(track)
    found = track['found']
    out = smooth_track(track, min_cutoff=1.0, beta=0.4, d_cutoff=1.0)

    assert out is not track and set(out) == set(track)
    for key in track:  # input not modified
        if isinstance(track[key], np.ndarray):
            assert np.array_equal(track[key], before[key], equal_nan=True)
            assert track[key].dtype == before[key].dtype
        else:
            assert track[key] == before[key]
    assert np.array_equal(out['found'], found) and out['found'].dtype == np.bool_
    assert np.array_equal(out['time_s'], track['time_s'])
    assert np.array_equal(out['frame_index'], track['frame_index'])
    assert out['source'] == 'clip.mp4'

    for key in ('cam', 'pose', 'shape', 'expression'):
        assert out[key].dtype == dtype and out[key].shape == track[key].shape
        assert np.isnan(out[key][~found]).all() and np.isfinite(out[key][found]).all()

    median = np.median(track['shape'][found], axis=0)
    assert np.array_equal(out['shape'][found], np.tile(median, (found.sum(), 1)))

    tol = 1e-6 if dtype == np.float32 else 1e-12
    for key in ('cam', 'pose', 'expression'):
        assert not np.allclose(out[key][found], track[key][found])  # it did filter
        for start, stop in [(1, 9), (12, 25), (26, 40)]:  # runs between not-found rows
            want = reference(track[key][start:stop].astype(np.float64),
                             track['time_s'][start:stop], 1.0, 0.4, 1.0)
            np.testing.assert_allclose(out[key][start:stop], want, rtol=tol, atol=tol)


def test_smooth_track_constant_values_stay_exact():
    rng = np.random.default_rng(5)
    track = make_track(rng)
    found = track['found']
    for key in ('cam', 'pose', 'shape', 'expression'):
        row = rng.normal(0, 3, track[key].shape[1]).astype(np.float32)
        track[key] = np.where(found[:, None], row, np.float32(np.nan))
    out = smooth_track(track, min_cutoff=0.5, beta=1.5, d_cutoff=2.0)
    for key in ('cam', 'pose', 'shape', 'expression'):
        assert out[key].dtype == np.float32
        assert np.array_equal(out[key], track[key], equal_nan=True)


def test_smooth_track_found_false_rows_break_runs_even_with_numbers():
    rng = np.random.default_rng(8)
    track = make_track(rng, dtype=np.float64)
    lost = ~track['found']
    for key in ('cam', 'pose', 'shape', 'expression'):
        track[key][lost] = 123.0  # stale numbers where no face was found
    out = smooth_track(track, beta=0.5)
    for key in ('cam', 'pose', 'shape', 'expression'):
        assert np.isnan(out[key][lost]).all()
    for key in ('cam', 'pose', 'expression'):
        assert np.array_equal(out[key][12], track[key][12])  # restart after rows 9-11
    median = np.median(track['shape'][~lost], axis=0)  # the stale rows are not in the median
    assert np.array_equal(out['shape'][~lost], np.tile(median, (int((~lost).sum()), 1)))


def test_smooth_track_without_found_rows_is_all_nan():
    rng = np.random.default_rng(9)
    track = make_track(rng, n=5, found=np.zeros(5, bool))
    out = smooth_track(track)
    for key in ('cam', 'pose', 'shape', 'expression'):
        assert out[key].shape == track[key].shape and np.isnan(out[key]).all()


@pytest.mark.parametrize('kwargs', [
    {'min_cutoff': 0.0}, {'min_cutoff': -1.0}, {'min_cutoff': float('nan')},
    {'d_cutoff': 0.0}, {'d_cutoff': -2.0}, {'beta': -0.1}, {'beta': float('inf')},
])
def test_bad_parameters_raise(kwargs):
    values, times = np.zeros((4, 2)), np.arange(4.0)
    with pytest.raises(ValueError):
        one_euro(values, times, **kwargs)
    with pytest.raises(ValueError):
        smooth_track(make_track(np.random.default_rng(0), n=4), **kwargs)


@pytest.mark.parametrize('times', [[0.0, 1.0, 1.0, 2.0], [0.0, 1.0, 0.5, 2.0],
                                   [3.0, 2.0, 1.0, 0.0], [0.0, float('nan'), 2.0, 3.0]])
def test_non_increasing_times_raise(times):
    with pytest.raises(ValueError, match='increasing'):
        one_euro(np.zeros((4, 2)), times)
    track = make_track(np.random.default_rng(0), n=4)
    track['time_s'] = np.array(times)
    with pytest.raises(ValueError, match='increasing'):
        smooth_track(track)


def test_inconsistent_shapes_raise():
    with pytest.raises(ValueError):
        one_euro(np.zeros(4), np.arange(4.0))              # values not (T, D)
    with pytest.raises(ValueError):
        one_euro(np.zeros((4, 2)), np.arange(5.0))         # times of another length
    rng = np.random.default_rng(0)
    for key, bad in [('pose', np.zeros((3, 6))), ('cam', np.zeros((4, 2))),
                     ('found', np.ones(4, int)), ('shape', np.zeros(4))]:
        track = make_track(rng, n=4)
        track[key] = bad
        with pytest.raises(ValueError):
            smooth_track(track)
    track = make_track(rng, n=4)
    del track['expression']
    with pytest.raises(ValueError, match='expression'):
        smooth_track(track)
