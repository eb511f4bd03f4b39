"""Floats as text, fast and exact: '%.9g' (float32) / '%.17g' (float64), the fewest fixed
significant digits that read back as the same float, formatted by compiled code (numba) that
writes exactly Python's characters."""
import math

import numba
import numpy as np


def float_precision(values):
    """Fewest significant digits that read back as exactly the same float of this dtype
    (fixed width: far faster to format than the per-value shortest repr)."""
    return 9 if values.dtype == np.float32 else 17


def float_format(values):
    """The %-format of one value of ``values`` (see float_precision)."""
    return '%%.%dg' % float_precision(values)


def format_rows(line, values):
    """``line`` (a format for one row) applied to every row of ``values`` (R, C) in one
    formatting operation instead of a Python loop over rows."""
    return (line * len(values)) % tuple(np.asarray(values).ravel().tolist())


# --- '%.<p>g' formatting, compiled --------------------------------------------------------
# Python's '%.17g' / '%.9g' (correctly rounded: the exact binary value rounded half to even to
# p significant digits) re-done in numba with exact integer arithmetic: the same characters,
# 4-5x faster. Values it does not take (inf, nan, |x| >= 10**p) leave the array to Python.

_MASK32 = 0xFFFFFFFF
_POW5 = np.array([5 ** i for i in range(14)], dtype=np.int64)
_POW10 = np.array([10 ** i for i in range(19)], dtype=np.uint64)
_POW10_FLOAT = np.array([float('1e%d' % i) for i in range(-400, 400)])  # index i + 400
_DIGIT_PAIRS = np.frombuffer(''.join('%02d' % i for i in range(100)).encode('ascii'),
                             dtype=np.uint8).copy()
_DE_BRUIJN = 0x022FDD63CC95386D  # (2**i * it) >> 58 differs for every i < 64
_TRAILING_ZEROS = np.zeros(64, dtype=np.int64)
_TRAILING_ZEROS[[((_DE_BRUIJN << i) % 2 ** 64) >> 58 for i in range(64)]] = np.arange(64)


@numba.njit(cache=True)
def _scaled_floor(m, e, s, limbs):
    """x = m * 2**e (0 < m < 2**53), s >= 0 -> (floor(x * 10**s), half, sticky): half is the
    first dropped bit (the dropped fraction is >= 1/2), sticky whether any later dropped bit
    is set. Exact: m * 5**s in 32-bit limbs (scratch ``limbs``). The floor must be < 2**60."""
    shift = -(e + s)
    if m < 2 ** 31 and s <= 13 and 0 < shift < 62:  # m * 5**s < 2**62: one int64 (float32 data)
        prod = m * _POW5[s]
        return (prod >> shift, (prod >> (shift - 1)) & 1 == 1,
                prod & ((1 << (shift - 1)) - 1) != 0)
    limbs[0] = m & _MASK32
    limbs[1] = m >> 32
    n = 2 if limbs[1] else 1
    left = s
    while left > 0:
        step = 13 if left > 13 else left  # 5**13 < 2**31: limb * 5**step + carry < 2**63
        left -= step
        p = _POW5[step]
        carry = 0
        for j in range(n):
            t = limbs[j] * p + carry
            limbs[j] = t & _MASK32
            carry = t >> 32
        if carry:
            limbs[n] = carry
            n += 1
    if shift <= 0:  # an integer (then < 2**60, so at most two limbs): nothing dropped
        value = limbs[0] | (limbs[1] << 32) if n > 1 else limbs[0]
        return value << (-shift), False, False
    word, off = shift >> 5, shift & 31
    q = 0
    for j in range(3):  # bits [shift, shift + 64) lie in limbs word .. word + 2
        if word + j < n:
            at = 32 * j - off
            if at >= 0:
                if at < 63:
                    q |= limbs[word + j] << at
            else:
                q |= limbs[word + j] >> (-at)
    word, off = (shift - 1) >> 5, (shift - 1) & 31
    half = word < n and (limbs[word] >> off) & 1 == 1
    sticky = word < n and (limbs[word] & ((1 << off) - 1)) != 0
    if not sticky:
        for j in range(min(word, n)):
            if limbs[j]:
                sticky = True
                break
    return q, half, sticky


@numba.njit(cache=True)
def _write_pairs(u, count, out, i):
    """Write the last ``count`` decimal digits of u (uint64) ending before out[i], two at a
    time, -> (u without them, the new i)."""
    hundred = np.uint64(100)
    while count >= 2:
        d = u % hundred
        u = u // hundred
        out[i - 1] = _DIGIT_PAIRS[2 * d + 1]
        out[i - 2] = _DIGIT_PAIRS[2 * d]
        i -= 2
        count -= 2
    return u, i


@numba.njit(cache=True)
def _write_digits(r, n, out, pos):
    """The n decimal digits of 0 <= r < 10**n (leading zeros kept) at out[pos:] -> pos + n."""
    u = np.uint64(r)
    end = pos + n
    i = end
    if n > 8:  # the low 8 digits apart: two short chains of dependent divisions
        low = u % np.uint64(100000000)
        u = u // np.uint64(100000000)
        _, i = _write_pairs(low, 8, out, i)
        n -= 8
    u, i = _write_pairs(u, n - n % 2, out, i)
    if n % 2:
        out[i - 1] = u + np.uint64(48)
    return end


@numba.njit(cache=True)
def _format_g(x, bits, precision, out, pos, limbs):
    """'%.<precision>g' % x written at out[pos:] (bits: those of x as int64) -> the position
    after it, or -1 when x is not finite or |x| >= 10**precision (then nothing is promised
    about out)."""
    if bits < 0:
        out[pos] = 45  # '-'
        pos += 1
    biased = (bits >> 52) & 0x7FF
    frac = bits & ((1 << 52) - 1)
    if biased == 0x7FF:
        return -1
    if biased == 0:
        if frac == 0:
            out[pos] = 48  # '0' (or '-0')
            return pos + 1
        m, e = frac, -1074
        k = int(math.floor(math.log10(abs(x))))  # subnormal: rare
    else:
        m, e = frac | (1 << 52), biased - 1075
        k = ((biased - 1023) * 78913) >> 18  # floor(log10(2**E)): the exponent k or k - 1
        if abs(x) >= _POW10_FLOAT[k + 401]:
            k += 1
    low_bit = m & -m  # drop trailing zero bits (fewer limbs)
    zeros = _TRAILING_ZEROS[((low_bit * _DE_BRUIJN) >> 58) & 63]
    m >>= zeros
    e += zeros
    top = np.int64(_POW10[precision])
    bottom = np.int64(_POW10[precision - 1])
    while True:  # k is the decimal exponent when the floor has exactly `precision` digits
        s = precision - 1 - k
        if s < 0:
            return -1
        q, half, sticky = _scaled_floor(m, e, s, limbs)
        if q >= top:
            k += 1
        elif q < bottom:
            k -= 1
        else:
            break
    if half and (sticky or q & 1):  # round half to even
        q += 1
        if q == top:
            q = bottom
            k += 1
    r = np.uint64(q)
    ten = np.uint64(10)
    n = precision  # significant digits left once trailing zeros are dropped
    while n > 1 and r % ten == 0:
        r = r // ten
        n -= 1
    if -4 <= k < precision:  # fixed point
        if k < 0:  # 0.000ddd
            out[pos] = 48
            out[pos + 1] = 46
            pos += 2
            for _ in range(-k - 1):
                out[pos] = 48
                pos += 1
            return _write_digits(r, n, out, pos)
        if n <= k + 1:  # an integer: ddd000
            pos = _write_digits(r, n, out, pos)
            for _ in range(k + 1 - n):
                out[pos] = 48
                pos += 1
            return pos
        scale = _POW10[n - k - 1]
        pos = _write_digits(r // scale, k + 1, out, pos)
        out[pos] = 46  # '.'
        return _write_digits(r % scale, n - k - 1, out, pos + 1)
    if n > 1:  # d.ddde+XX
        scale = _POW10[n - 1]
        out[pos] = r // scale + np.uint64(48)
        out[pos + 1] = 46
        pos = _write_digits(r % scale, n - 1, out, pos + 2)
    else:
        out[pos] = r + np.uint64(48)
        pos += 1
    out[pos] = 101  # 'e'
    out[pos + 1] = 45 if k < 0 else 43
    pos += 2
    k = -k if k < 0 else k
    if k >= 100:
        out[pos] = 48 + k // 100
        pos += 1
    out[pos] = 48 + (k // 10) % 10
    out[pos + 1] = 48 + k % 10
    return pos + 2


@numba.njit(cache=True)
def _format_rows_kernel(values, bits, columns, prefix, precision, out):
    """Rows of ``columns`` values: prefix, the values ('%.<precision>g') separated by
    spaces, a newline -> the length written to out, or -1 (see _format_g)."""
    limbs = np.zeros(64, dtype=np.int64)  # m * 5**s < 2**(53 + 2.33 * 340) < 2**(32 * 29)
    pos = 0
    for i in range(values.shape[0]):
        column = i % columns
        if column == 0:
            for c in range(prefix.shape[0]):
                out[pos] = prefix[c]
                pos += 1
        else:
            out[pos] = 32
            pos += 1
        pos = _format_g(values[i], bits[i], precision, out, pos, limbs)
        if pos < 0:
            return -1
        if column == columns - 1:
            out[pos] = 10
            pos += 1
    return pos


def float_rows(prefix, values):
    """(R, C) float32 / float64 ``values`` -> one line per row: ``prefix``, then the values
    separated by spaces. Exactly ``format_rows(prefix + ' '.join([float_format(values)] * C) +
    '\n', values)``, formatted by compiled code."""
    precision = float_precision(values)
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    rows, columns = values.shape
    head = np.frombuffer(prefix.encode('ascii'), dtype=np.uint8)
    # a value takes at most 24 characters: '-', 17 digits, '.', 'e-308' (or '0.000' + 17)
    out = np.empty(rows * (len(head) + 25 * columns), dtype=np.uint8)
    size = _format_rows_kernel(flat, flat.view(np.int64), columns, head, precision, out) \
        if flat.size else 0
    if size < 0:  # inf, nan or huge values: Python's own formatting
        fmt = float_format(values)
        return format_rows(prefix + ' '.join([fmt] * columns) + '\n', values)
    return str(memoryview(out)[:size], 'ascii')
