"""Numeric flags are checked up front (issue #18 case 12): nan, inf and out-of-range values
are refused with one line naming the flag and exit status 2, before any input is read or the
output folder is made."""
import math

import pytest

import config
import demo

NUMERIC = sorted(name for name, flag in config.build_flags()._flags().items()
                 if type(flag.default) in (int, float) and name == flag.name)


def run(capsys, tmp_path, *flags):
    out = tmp_path / 'out'
    status = demo.main(['demo', '--img_path', str(tmp_path / 'none.jpg'), '--out_folder',
                        str(out)] + list(flags))
    err = capsys.readouterr().err
    return status, err.strip().splitlines(), out.exists()


@pytest.mark.parametrize('value', ['inf', '-inf', 'nan', '1e999'])
@pytest.mark.parametrize('name', ['smooth_min_cutoff', 'smooth_beta', 'smooth_d_cutoff'])
def test_a_smoothing_flag_that_is_not_finite_is_refused_before_anything_runs(
        capsys, tmp_path, name, value):
    status, lines, made = run(capsys, tmp_path, '--smooth', '--%s=%s' % (name, value))
    assert status == 2 and not made
    assert len(lines) == 1 and lines[0].startswith('error: --%s=' % name), lines
    assert 'finite' in lines[0]


@pytest.mark.parametrize('name', NUMERIC)
def test_every_numeric_flag_has_a_range_checked_up_front(capsys, tmp_path, name):
    """Each numeric flag: a value far below any sane one is refused naming the flag."""
    extra = ['--smooth'] if name.startswith('smooth_') else []
    extra += ['--detect_faces'] if name in ('max_faces', 'min_face_size') else []
    extra += ['--engine=ray'] if name.startswith('ray_') else []
    status, lines, made = run(capsys, tmp_path, *extra, '--%s=-5' % name)
    assert status == 2 and not made
    assert len(lines) == 1 and lines[0].startswith('error: ') and '--%s' % name in lines[0]


def test_values_in_range_pass(tmp_path):
    fv = config.get_config(['demo', '--smooth', '--smooth_beta=0', '--smooth_min_cutoff=1e-3',
                            '--batch_size=1024', '--max_pixels=1'])
    assert fv.smooth_beta == 0 and math.isclose(fv.smooth_min_cutoff, 1e-3)


def test_every_numeric_flag_has_its_range():
    assert set(NUMERIC) == set(config.NUMERIC_RANGES)
