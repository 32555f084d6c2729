"""The vector math (src/cpp/kernels/vecmath.h) against the C library, under every ISA.

Error in ulp of the exact result (long-double libm for exp/expm1/log1p/tanh, ``math.erf`` for
erf), over the whole range: random arguments at every scale, +-0, subnormals, the overflow and
underflow thresholds, +-inf and NaN; the bounds are those stated in vecmath.h. Also: each
element's result does not depend on its position (vector body vs tail) or the array length.
"""
import math

import numpy as np
import pytest

from fastbp import _core

SUPPORTED = list(_core.supported_isas())
FUNCS = ["exp", "expm1", "log1p", "tanh", "erf"]
# max ulp (vecmath.h)
BOUND = {
    np.float64: {"exp": 1, "expm1": 2, "log1p": 1, "tanh": 3, "erf": 2},
    np.float32: {"exp": 1, "expm1": 2, "log1p": 1, "tanh": 3, "erf": 3},
}
_LIBM = {"exp": np.exp, "expm1": np.expm1, "log1p": np.log1p, "tanh": np.tanh}


def exact(name, x):
    """Reference in long double (64-bit mantissa), or math.erf (glibc, < 1 ulp in double)."""
    if name == "erf":
        return np.array([math.erf(v) for v in x.astype(np.float64)], dtype=np.longdouble)
    with np.errstate(all="ignore"):
        return _LIBM[name](x.astype(np.longdouble))


def ulp_error(y, ref, dt):
    """|y - ref| in units of the spacing of dt at ref (subnormal spacing below the normals);
    0 where y equals the correctly rounded ref (covers +-inf), inf where NaN-ness differs."""
    with np.errstate(all="ignore"):
        rr = ref.astype(dt)
        sp = np.maximum(np.spacing(np.abs(rr)).astype(np.longdouble),
                        np.longdouble(np.finfo(dt).smallest_subnormal))
        err = np.abs(y.astype(np.longdouble) - ref) / sp
    err[y == rr] = 0
    nan_y, nan_r = np.isnan(y), np.isnan(rr)
    err[nan_y & nan_r] = 0
    err[nan_y != nan_r] = np.inf
    return err


def arguments(dt, name, n=6000, seed=0):
    rng = np.random.default_rng(seed)
    fi = np.finfo(dt)
    big = 750.0 if dt == np.float64 else 110.0
    logmax = math.log(float(fi.max))
    parts = [
        rng.uniform(-1, 1, n), rng.uniform(-8, 8, n), rng.uniform(-big, big, n),
        rng.uniform(-1e-4, 1e-4, n),
        # every magnitude, both signs (exp of a uniform log covers subnormals to near max)
        np.exp(rng.uniform(math.log(float(fi.smallest_subnormal)), logmax, n))
        * rng.choice([-1.0, 1.0], n),
    ]
    if name == "log1p":
        parts.append(rng.uniform(-1, -0.25, n))
    return np.concatenate(parts).astype(dt)


def special(dt):
    fi = np.finfo(dt)
    tiny = fi.smallest_subnormal
    v = [0.0, -0.0, tiny, -tiny, 3 * tiny, fi.tiny, -fi.tiny, fi.max, -fi.max, np.inf, -np.inf,
         np.nan, -np.nan, 1.0, -1.0, 0.5, -0.5, 1e-300 if dt == np.float64 else 1e-30,
         # exp/expm1 overflow and underflow thresholds, log1p near -1, erf's interval ends
         709.78, 709.79, 710.0, -708.4, -745.1, -745.2, -746.0, 88.72, 88.73, -87.3, -103.9,
         -104.0, -0.9999999, np.nextafter(dt(-1), dt(0)), 5.9, 6.0, 6.1, 3.9, 4.0, 4.1, 2.5,
         -2.5, 0.99999, 1.00001, 20.0, -20.0, 40.0, -40.0, 19.0, -19.0]
    with np.errstate(over="ignore"):
        return np.array(v, dtype=dt)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("isa_name", SUPPORTED)
def test_accuracy_against_libm(isa_name, name, dt):
    x = np.concatenate([arguments(dt, name), special(dt)])
    y = _core.vecmath(name, x, isa_name)
    assert y.dtype == dt and y.shape == x.shape
    err = ulp_error(y, exact(name, x), dt)
    worst = int(np.argmax(err))
    assert err[worst] <= BOUND[dt][name], (name, x[worst], y[worst],
                                           exact(name, x[worst:worst + 1]))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("isa_name", SUPPORTED)
def test_special_values(isa_name, dt):
    inf, nan = np.inf, np.nan
    cases = {
        "exp": [(0.0, 1.0), (-0.0, 1.0), (inf, inf), (-inf, 0.0), (nan, nan), (1e6, inf),
                (-1e6, 0.0)],
        "expm1": [(0.0, 0.0), (-0.0, -0.0), (inf, inf), (-inf, -1.0), (nan, nan), (1e6, inf),
                  (-1e6, -1.0)],
        "log1p": [(0.0, 0.0), (-0.0, -0.0), (-1.0, -inf), (-2.0, nan), (-inf, nan), (inf, inf),
                  (nan, nan)],
        "tanh": [(0.0, 0.0), (-0.0, -0.0), (inf, 1.0), (-inf, -1.0), (nan, nan), (1e6, 1.0),
                 (-1e6, -1.0)],
        "erf": [(0.0, 0.0), (-0.0, -0.0), (inf, 1.0), (-inf, -1.0), (nan, nan), (1e6, 1.0),
                (-1e6, -1.0)],
    }
    for name, pairs in cases.items():
        x = np.array([p[0] for p in pairs], dtype=dt)
        want = np.array([p[1] for p in pairs], dtype=dt)
        y = _core.vecmath(name, x, isa_name)
        np.testing.assert_array_equal(y, want, err_msg=name)  # NaN == NaN here
        np.testing.assert_array_equal(np.signbit(y), np.signbit(want), err_msg=name)
        # subnormal arguments: expm1, log1p, tanh and erf return x (erf: 2x/sqrt(pi))
        t = np.array([np.finfo(dt).smallest_subnormal * 5, -np.finfo(dt).smallest_subnormal * 5],
                     dtype=dt)
        if name in ("expm1", "log1p", "tanh"):
            np.testing.assert_array_equal(_core.vecmath(name, t, isa_name), t, err_msg=name)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 7, 33, 257])
def test_tails_and_isas_agree(isa, dt, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 4).astype(dt)
    x[:: 5] = np.nan
    for name in FUNCS:
        full = _core.vecmath(name, x)
        for i in range(n):  # the same value at any position / length
            one = _core.vecmath(name, x[i:i + 1])
            np.testing.assert_array_equal(one, full[i:i + 1])
        other = _core.vecmath(name, x, "generic")
        np.testing.assert_allclose(full, other, rtol=4 * np.finfo(dt).eps, atol=0)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown vector math"):
        _core.vecmath("sin", np.zeros(3))
    with pytest.raises(TypeError):
        _core.vecmath("exp", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="isa"):
        _core.vecmath("exp", np.zeros(3), "sse9")
