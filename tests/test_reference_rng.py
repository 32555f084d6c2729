"""Tests of the counter-based RNG shared by the native engine and the NumPy reference."""
import itertools

import numpy as np
import pytest

from fastbp.reference import rng

GAMMA = 0x9E3779B97F4A7C15
# The published SplitMix64 stream for state 0 (Vigna's splitmix64.c): output k is
# splitmix64(k * GAMMA) in ENGINE.md's formulation (which adds GAMMA first).
SPLITMIX_SEED0 = [
    0xE220A8397B1DCDAF,
    0x6E789E6AA1B965F4,
    0x06C45D188009454F,
    0xF88BB8A8724C81EC,
    0x1B39896A51A8749B,
]


def test_splitmix64_known_stream_int_and_array():
    xs = [(k * GAMMA) & rng.MASK64 for k in range(5)]
    assert [rng.splitmix64(x) for x in xs] == SPLITMIX_SEED0
    arr = rng.splitmix64(np.array(xs, dtype=np.uint64))
    assert arr.dtype == np.uint64
    assert [int(v) for v in arr] == SPLITMIX_SEED0


def test_splitmix64_array_matches_int_on_random_inputs():
    x = np.random.default_rng(0).integers(0, 2**64, 500, dtype=np.uint64)
    got = rng.splitmix64(x)
    assert all(int(g) == rng.splitmix64(int(v)) for g, v in zip(got, x))


def test_splitmix64_reduces_python_ints_mod_2_64():
    assert rng.splitmix64(-1) == rng.splitmix64(2**64 - 1)
    assert rng.splitmix64(2**64 + 5) == rng.splitmix64(5)
    with pytest.raises(TypeError):
        rng.splitmix64(1.5)


def test_mix_and_uniform_known_values():
    # Golden values: the native engine must reproduce them bit for bit.
    assert rng.mix(1, 2) == 0xE06DD043328BD285
    assert rng.mix(0, 0) == 0xA706DD2F4D197E6F
    assert rng.mix(3, 4) == rng.splitmix64(3 ^ rng.splitmix64(4))
    assert rng.uniform(rng.splitmix64(0)) == (0xE220A8397B1DCDAF >> 11) * 2.0**-53
    assert rng.uniform(0) == 0.0
    assert rng.uniform(2**64 - 1) == 1.0 - 2.0**-53
    u = rng.uniform(np.array([0, 2**64 - 1], dtype=np.uint64))
    assert u.tolist() == [0.0, 1.0 - 2.0**-53]


def test_mulhi64_matches_python_ints():
    g = np.random.default_rng(1)
    a = g.integers(0, 2**64, 2000, dtype=np.uint64)
    b = g.integers(0, 2**64, 2000, dtype=np.uint64)
    a[:3] = [2**64 - 1, 0, 2**63]
    b[:3] = [2**64 - 1, 2**64 - 1, 2]
    hi = rng.mulhi64(a, b)
    assert all(int(h) == (int(x) * int(y)) >> 64 for h, x, y in zip(hi, a, b))


def test_dropout_mask_matches_spec_literally():
    seed, step, layer, shape, rate = 42, 7, 3, (4, 5), 0.4
    base = rng.mix(rng.mix(rng.mix(seed, 1), step), layer)
    expected = np.array(
        [rng.uniform(rng.splitmix64((base + i) & rng.MASK64)) >= rate for i in range(20)]
    ).reshape(shape)
    np.testing.assert_array_equal(rng.dropout_mask(seed, step, layer, shape, rate), expected)


def test_dropout_mask_known_value():
    m = rng.dropout_mask(42, 0, 3, (2, 5), 0.5)
    assert m.astype(int).tolist() == [[0, 1, 1, 1, 1], [0, 1, 0, 1, 0]]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_rate_statistics(rate):
    m = rng.dropout_mask(123, 5, 2, (200, 500), rate)
    n = m.size
    keep = m.mean()
    sd = np.sqrt(rate * (1 - rate) / n)
    assert abs(keep - (1 - rate)) <= 5 * sd + 1e-12
    if rate == 0.0:
        assert m.all()


def test_dropout_mask_depends_on_step_layer_seed():
    a = rng.dropout_mask(1, 0, 0, (50, 50), 0.5)
    for other in [(2, 0, 0), (1, 1, 0), (1, 0, 1)]:
        b = rng.dropout_mask(*other, (50, 50), 0.5)
        assert 0.4 < (a != b).mean() < 0.6  # independent-looking streams
    # The mask is a prefix-stable function of the flat index.
    np.testing.assert_array_equal(
        rng.dropout_mask(1, 0, 0, (10, 50), 0.5), a[:10]
    )


def test_shuffle_permutation_matches_literal_transcription():
    for n in [0, 1, 2, 3, 10, 257, 1000]:
        for epoch in [0, 1, 5]:
            p = rng.shuffle_permutation(9, epoch, n)
            np.testing.assert_array_equal(p, rng._shuffle_permutation_slow(9, epoch, n))
            assert p.dtype == np.int64
            np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_shuffle_permutation_known_values():
    assert rng.shuffle_permutation(42, 0, 10).tolist() == [7, 1, 3, 9, 6, 8, 2, 5, 0, 4]
    assert rng.shuffle_permutation(42, 1, 10).tolist() == [6, 1, 2, 0, 8, 7, 5, 9, 3, 4]


def test_shuffle_permutation_is_uniform_on_three_elements():
    counts = {p: 0 for p in itertools.permutations(range(3))}
    trials = 6000
    for e in range(trials):
        counts[tuple(rng.shuffle_permutation(5, e, 3).tolist())] += 1
    expected = trials / 6
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 25.7  # chi-square, 5 degrees of freedom, p ~ 1e-4


def test_shuffle_permutation_rejects_negative_n():
    with pytest.raises(ValueError):
        rng.shuffle_permutation(0, 0, -1)
