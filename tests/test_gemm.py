"""GEMM engine: every ISA kernel vs a float64 NumPy reference.

Contract (src/cpp/kernels/gemm/gemm.h): C = alpha * op(A) @ op(B) + beta * C, row-major,
beta == 0 overwrites C without reading it (C is pre-filled with NaN to check that).

Tolerance: for every element,
    |C - C_ref| <= 4 * (K + 2) * eps(dtype) * (|alpha| * (|op(A)| @ |op(B)|) + |beta| * |C0|) + tiny
which is the classical worst-case bound for a length-K dot product with a safety factor; the
reference is computed in float64 from the same (already rounded) inputs.
"""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastbp import _core

ISAS = list(_core.supported_isas())
DTYPES = [np.float32, np.float64]
TRANS = list(itertools.product([False, True], [False, True]))
ALPHAS = [1.0, -0.5]
BETAS = [0.0, 1.0, 0.3]
DIMS = [1, 2, 7, 15, 16, 17, 33, 63, 64, 65, 257]
KS = [1, 2, 5, 16, 17, 300]


def _gemm(dtype):
    return _core.gemm_f32 if dtype == np.float32 else _core.gemm_f64


@pytest.fixture
def isa_guard():
    old = _core.get_isa()
    old_threads = _core.get_num_threads()
    yield
    _core.set_isa(old)
    _core.set_num_threads(old_threads)


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _reference(a, b, ta, tb):
    """float64 op(A) @ op(B) and |op(A)| @ |op(B)| (for the error bound)."""
    oa = a.astype(np.float64)
    ob = b.astype(np.float64)
    oa = oa.T if ta else oa
    ob = ob.T if tb else ob
    return oa @ ob, np.abs(oa) @ np.abs(ob), oa.shape[1]


def _check(a, b, c0, ta, tb, alpha, beta, dtype, ref=None):
    c = c0.copy()
    _gemm(dtype)(a, b, c, ta, tb, alpha, beta)
    prod, absprod, k = ref if ref is not None else _reference(a, b, ta, tb)
    mag = abs(alpha) * absprod
    if beta == 0.0:
        want = alpha * prod
    else:
        want = alpha * prod + beta * c0.astype(np.float64)
        mag = mag + abs(beta) * np.abs(c0.astype(np.float64))
    eps = np.finfo(dtype).eps
    tol = 4.0 * (k + 2) * eps * mag + np.finfo(dtype).tiny
    assert np.all(np.isfinite(c)), "non-finite output (beta=0 must not read C)"
    err = np.abs(c.astype(np.float64) - want)
    bad = err > tol
    assert not bad.any(), (
        f"shape m={c.shape[0]} n={c.shape[1]} k={k} ta={ta} tb={tb} alpha={alpha} "
        f"beta={beta}: max err {err.max():.3e}, worst excess {(err - tol).max():.3e}"
    )


def _edge_shapes():
    shapes = []
    for idx, (m, n) in enumerate(itertools.product(DIMS, DIMS)):
        shapes.append((m, n, KS[idx % len(KS)]))
    shapes += [(257, 65, 1000), (65, 257, 1000), (17, 257, 1000), (257, 7, 1000),
               (1, 1, 1000), (7, 2100, 3), (300, 10, 600), (10, 300, 600)]
    return shapes


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANS, ids=["NN", "NT", "TN", "TT"])
def test_gemm_edges(isa, dtype, ta, tb, isa_guard):
    # One thread: this test is about the kernels; partitions are covered by the thread tests
    # and by the hypothesis test (and a loaded CI box makes parallel regions slow).
    _core.set_isa(isa)
    _core.set_num_threads(1)
    rng = np.random.default_rng(1234)
    for m, n, k in _edge_shapes():
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        c_init = rng.standard_normal((m, n)).astype(dtype)
        ref = _reference(a, b, ta, tb)
        for alpha, beta in itertools.product(ALPHAS, BETAS):
            c0 = np.full((m, n), np.nan, dtype) if beta == 0.0 else c_init
            _check(a, b, c0, ta, tb, alpha, beta, dtype, ref)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANS, ids=["NN", "NT", "TN", "TT"])
def test_gemm_narrow(isa, dtype, ta, tb, isa_guard):
    """C of 1-16 columns (kernels/gemm narrow path: dot products along K for op(A) = A,
    axpy chains along M for op(A) = A^T), with ragged M and K, at 1 and 2 threads."""
    _core.set_isa(isa)
    old = _core.get_num_threads()
    rng = np.random.default_rng(99)
    try:
        for threads in (1, 2):
            _core.set_num_threads(threads)
            for n in (1, 2, 3, 4, 5, 8, 9, 10, 16):
                for m, k in [(8, 8), (16, 16), (17, 33), (63, 17), (65, 255), (257, 64),
                             (1000, 100), (4100, 300), (70, 900)]:
                    a, b = _operands(rng, m, n, k, ta, tb, dtype)
                    ref = _reference(a, b, ta, tb)
                    c_init = rng.standard_normal((m, n)).astype(dtype)
                    for alpha, beta in itertools.product(ALPHAS, BETAS):
                        c0 = np.full((m, n), np.nan, dtype) if beta == 0.0 else c_init
                        _check(a, b, c0, ta, tb, alpha, beta, dtype, ref)
    finally:
        _core.set_num_threads(old)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_narrow_rows_do_not_depend_on_their_block(isa, dtype, isa_guard):
    """The narrow path's dot form (op(A) = A, 1-4 columns, 1-10 on AVX-512 f32) sums a block's
    accumulators together (gemm_simd_impl.h hsum_lanes: the same additions as one at a time): a row of C is
    bitwise the same whichever rows share its block, where its block starts, and whether C is
    overwritten or accumulated. (The narrow path takes at least one vector's width of rows
    and of K: fewer rows go to the small path, one row to the vector-matrix path.)"""
    _core.set_isa(isa)
    g = _gemm(dtype)
    rng = np.random.default_rng(21)
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        for k in (17, 64, 301):
            a = rng.standard_normal((41, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            c_init = rng.standard_normal((41, n)).astype(dtype)
            for alpha, beta in [(1.0, 0.0), (-0.5, 0.3)]:
                whole = c_init.copy()
                g(a, b, whole, False, False, alpha, beta)
                for s, m in [(0, 16), (3, 17), (5, 20), (17, 24), (25, 16)]:
                    part = c_init[s:s + m].copy()
                    g(np.ascontiguousarray(a[s:s + m]), b, part, False, False, alpha, beta)
                    np.testing.assert_array_equal(part, whole[s:s + m],
                                                  err_msg=f"n={n} k={k} rows {s}:{s + m}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_degenerate(isa, dtype, isa_guard):
    _core.set_isa(isa)
    g = _gemm(dtype)
    rng = np.random.default_rng(0)
    # K == 0: C = beta * C, and beta == 0 gives zeros even over NaN.
    a = np.zeros((3, 0), dtype)
    b = np.zeros((0, 4), dtype)
    c = np.full((3, 4), np.nan, dtype)
    g(a, b, c, False, False, 1.0, 0.0)
    assert np.array_equal(c, np.zeros((3, 4), dtype))
    c0 = rng.standard_normal((3, 4)).astype(dtype)
    c = c0.copy()
    g(a, b, c, False, False, 2.0, 0.5)
    np.testing.assert_allclose(c, 0.5 * c0, rtol=0, atol=0)
    # Empty M or N: nothing happens.
    for m, n in [(0, 5), (5, 0), (0, 0)]:
        c = np.zeros((m, n), dtype)
        g(np.ones((m, 3), dtype), np.ones((3, n), dtype), c, False, False, 1.0, 0.0)
    # alpha == 0: C = beta * C without touching A, B (which may hold NaN).
    a = np.full((5, 6), np.nan, dtype)
    b = np.full((6, 7), np.nan, dtype)
    c = np.full((5, 7), np.nan, dtype)
    g(a, b, c, False, False, 0.0, 0.0)
    assert np.array_equal(c, np.zeros((5, 7), dtype))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(600, 700, 500), (1000, 10, 700), (33, 2100, 300),
                                   (4100, 3, 300),
                                   # (5e5 to 1e6 multiply-adds: the small path in a region)
                                   (128, 256, 16), (128, 16, 256), (66, 130, 100)])
def test_gemm_threads_bitwise(isa, dtype, shape, isa_guard):
    _core.set_isa(isa)
    m, n, k = shape
    rng = np.random.default_rng(7)
    g = _gemm(dtype)
    old = _core.get_num_threads()
    try:
        for ta, tb in [(False, False), (True, True)]:
            a, b = _operands(rng, m, n, k, ta, tb, dtype)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            out = []
            for nt in (1, 2):
                _core.set_num_threads(nt)
                c = c0.copy()
                g(a, b, c, ta, tb, 0.7, 0.3)
                out.append(c)
            assert np.array_equal(out[0], out[1])
    finally:
        _core.set_num_threads(old)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_isas_agree_with_naive(dtype, isa_guard):
    rng = np.random.default_rng(3)
    naive = _core.gemm_naive_f32 if dtype == np.float32 else _core.gemm_naive_f64
    a = rng.standard_normal((70, 90)).astype(dtype)
    b = rng.standard_normal((90, 50)).astype(dtype)
    ref = np.empty((70, 50), dtype)
    naive(a, b, ref, False, False, 1.0, 0.0)
    for isa in ISAS:
        _core.set_isa(isa)
        c = np.full((70, 50), np.nan, dtype)
        _gemm(dtype)(a, b, c, False, False, 1.0, 0.0)
        np.testing.assert_allclose(c, ref, rtol=0, atol=100 * 90 * np.finfo(dtype).eps)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    m=st.integers(1, 300),
    n=st.integers(1, 300),
    k=st.integers(1, 600),
    ta=st.booleans(),
    tb=st.booleans(),
    alpha=st.sampled_from([1.0, -0.5, 2.0]),
    beta=st.sampled_from([0.0, 1.0, 0.3]),
    dtype=st.sampled_from(DTYPES),
    isa=st.sampled_from(ISAS),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_gemm_hypothesis(m, n, k, ta, tb, alpha, beta, dtype, isa, threads, seed, isa_guard):
    _core.set_isa(isa)
    _core.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    a, b = _operands(rng, m, n, k, ta, tb, dtype)
    c0 = (np.full((m, n), np.nan, dtype) if beta == 0.0
          else rng.standard_normal((m, n)).astype(dtype))
    _check(a, b, c0, ta, tb, alpha, beta, dtype)


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_info_names_tile_and_blocking(isa):
    info = _core.gemm_info(isa)
    assert info["isa"] == isa
    caches = info["caches"]
    assert caches["l1d"] > 0 and caches["l2"] > 0 and caches["l3"] >= caches["l2"]
    for key in ("f32", "f64"):
        k = info[key]
        assert k["name"].startswith(isa)
        assert k["mc"] % k["mr"] == 0 and k["mc"] >= k["mr"]
        assert k["nc"] % k["nr"] == 0 and k["nc"] >= k["nr"]
        assert k["kc"] % 8 == 0 and k["kc"] >= 8
        assert 1 <= k["narrow_max_k"] <= 2048
    assert _core.gemm_info()["isa"] == _core.get_isa()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_gemm_blocking_follows_cache_sizes(isa, dtype):
    small = _core.gemm_blocking(isa, dtype, 32 << 10, 512 << 10, 8 << 20)
    big = _core.gemm_blocking(isa, dtype, 48 << 10, 2 << 20, 64 << 20)
    unknown = _core.gemm_blocking(isa, dtype, 0, 0, 0)
    # Unknown sizes fall back to 32 KiB / 512 KiB / 8 MiB.
    assert unknown == small
    # Larger caches never give smaller blocks.
    for key in ("mc", "kc", "nc", "narrow_max_k"):
        assert big[key] >= small[key], key
    info = _core.gemm_info(isa)[dtype]
    for b in (small, big):
        assert b["mc"] % info["mr"] == 0 and b["nc"] % info["nr"] == 0
        elem = 4 if dtype == "f32" else 8
        # The A block stays inside L2 and the B block inside L3 (with the caches given).
        assert b["mc"] * b["kc"] * elem <= (2 << 20 if b is big else 512 << 10)
        assert b["kc"] * b["nc"] * elem <= (64 << 20 if b is big else 8 << 20)
    with pytest.raises(ValueError):
        _core.gemm_blocking("sse9", dtype, 0, 0, 0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_spans_several_blocks(isa, dtype, isa_guard):
    # Shapes crossing the MC, KC and NC block boundaries of the tile in use (a ragged block
    # in each dimension), one and two threads.
    _core.set_isa(isa)
    info = _core.gemm_info(isa)["f32" if dtype == np.float32 else "f64"]
    m = info["mc"] + info["mr"] + 1
    k = info["kc"] + 3
    n = info["nc"] + info["nr"] + 5
    rng = np.random.default_rng(11)
    for ta, tb in TRANS:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        ref = _reference(a, b, ta, tb)
        for threads in (1, 2):
            _core.set_num_threads(threads)
            _check(a, b, c0, ta, tb, 1.0, 0.3, dtype, ref)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_one_row(isa, dtype, isa_guard):
    # A batch of one (M == 1): the vector-matrix path, every transposition, chunk and lane
    # tails (N, K not multiples of the vector width), C accumulated or overwritten.
    _core.set_isa(isa)
    rng = np.random.default_rng(5)
    for n, k in [(1031, 513), (700, 2100), (5, 3), (64, 64), (257, 1)]:
        for ta, tb in TRANS:
            a, b = _operands(rng, 1, n, k, ta, tb, dtype)
            c_init = rng.standard_normal((1, n)).astype(dtype)
            ref = _reference(a, b, ta, tb)
            for threads in (1, 2):
                _core.set_num_threads(threads)
                for alpha, beta in [(1.0, 0.0), (-0.5, 0.3)]:
                    c0 = np.full((1, n), np.nan, dtype) if beta == 0.0 else c_init
                    _check(a, b, c0, ta, tb, alpha, beta, dtype, ref)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_one_row_is_the_same_at_any_width(isa, dtype, isa_guard):
    """One row times B: up to one register block of columns the vector-matrix path keeps its
    sums in registers, wider rows sweep B by rows, four at a time (gemm_simd_impl.h
    gemv_n_rows_simd) -- every element the same multiply-adds in the same order, so a column's
    value does not depend on how many columns the product has; likewise with B transposed."""
    _core.set_isa(isa)
    rng = np.random.default_rng(8)
    g = _gemm(dtype)
    for k in (1, 3, 4, 9, 64, 301):
        a = rng.standard_normal((1, k)).astype(dtype)
        b = rng.standard_normal((k, 700)).astype(dtype)
        wide = np.zeros((1, 700), dtype)
        g(a, b, wide)
        for n in (5, 16, 33, 64, 128, 129, 250):
            c = np.full((1, n), np.nan, dtype)
            g(a, np.ascontiguousarray(b[:, :n]), c)
            np.testing.assert_array_equal(c, wide[:, :n], err_msg=f"k={k} n={n}")
        # B transposed (dx = dz W^T): rows of B a vector's width at a time, the rest four at a
        # time (gemv_t_simd) -- the same per row
        bt = np.ascontiguousarray(b.T)
        wide_t = np.zeros((1, 700), dtype)
        g(a, bt, wide_t, False, True)
        for s0, n in [(0, 5), (3, 16), (7, 33), (100, 64), (1, 129)]:
            c = np.full((1, n), np.nan, dtype)
            g(a, np.ascontiguousarray(bt[s0:s0 + n]), c, False, True)
            np.testing.assert_array_equal(c, wide_t[:, s0:s0 + n], err_msg=f"T k={k} {s0}+{n}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ta,tb", TRANS)
def test_gemm_tiny_is_the_small_path(isa, dtype, ta, tb, isa_guard):
    """Products of <= 16 rows, one vector of columns and K <= 16 take the tiny kernel
    (gemm_simd_impl.h tiny_simd): its rows are bitwise those of a 40-row product, which the
    small path computes (K and N kept off the narrow path, which sums in another order; one
    row is the vector-matrix path's)."""
    _core.set_isa(isa)
    width = {"avx512": 64, "avx2": 32}.get(isa, 16) // np.dtype(dtype).itemsize  # lanes
    rng = np.random.default_rng(11)
    g = _gemm(dtype)
    cases = [(m, n, k) for m in (2, 4, 7, 16) for n in (1, 2, 4) for k in (1, 2, 3)]
    if not ta:  # N above the narrow path's bound (narrow_max_n: 10 on AVX-512 f32, else 4)
        bound = 10 if (isa == "avx512" and np.dtype(dtype) == np.float32) else 4
        cases += [(m, n, k) for m in (2, 5, 16) for n in (bound + 1, width)
                  if bound < n <= width for k in (5, 16)]
    for m, n, k in cases:
        a_big, b = _operands(rng, 40, n, k, ta, tb, dtype)
        a = np.ascontiguousarray(a_big[:, :m] if ta else a_big[:m])
        for alpha, beta in [(1.0, 0.0), (-0.5, 0.3)]:
            c0 = rng.standard_normal((40, n)).astype(dtype)
            big, small = c0.copy(), c0[:m].copy()
            g(a_big, b, big, ta, tb, alpha, beta)
            g(a, b, small, ta, tb, alpha, beta)
            assert np.array_equal(small, big[:m]), (m, n, k, alpha, beta)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_small_transposed_b_is_the_copy_transposed(isa, dtype, isa_guard):
    """The small path copies a transposed B into a K x N buffer (in register tiles where the
    ISA has them, masked at the edges); the product is then bitwise the one of B transposed
    beforehand, for every edge of the tiles (N and K on both sides of 8 and 16)."""
    _core.set_isa(isa)
    _core.set_num_threads(1)
    rng = np.random.default_rng(7)
    g = _gemm(dtype)
    for m, n, k in itertools.product((3, 32), (5, 8, 17, 64), (1, 7, 16, 33, 64)):
        a, b = _operands(rng, m, n, k, False, True, dtype)
        c_t, c_n = np.zeros((m, n), dtype), np.zeros((m, n), dtype)
        g(a, b, c_t, False, True, 1.0, 0.0)
        g(a, np.ascontiguousarray(b.T), c_n, False, False, 1.0, 0.0)
        assert np.array_equal(c_t, c_n), (m, n, k)
