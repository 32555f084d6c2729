"""Counter-based random numbers shared by the native engine and the NumPy reference.

Everything here follows ``docs/ENGINE.md`` ("Random numbers") bit for bit:

``splitmix64(x)``
    ``z = x + 0x9E3779B97F4A7C15``; ``z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9``;
    ``z = (z ^ (z >> 27)) * 0x94D049BB133111EB``; ``return z ^ (z >> 31)`` (all mod 2**64).
``mix(a, b) = splitmix64(a ^ splitmix64(b))``
``uniform(u) = (u >> 11) * 2**-53``

Integers given as Python ints are reduced modulo 2**64 (so a negative seed behaves like its
two's-complement bit pattern).
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

__all__ = [
    "MASK64",
    "splitmix64",
    "mix",
    "uniform",
    "mulhi64",
    "dropout_base",
    "dropout_mask",
    "shuffle_base",
    "shuffle_permutation",
]

MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

IntOrArray = Union[int, np.integer, np.ndarray]


def _splitmix64_int(x: int) -> int:
    z = (int(x) + _GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def _splitmix64_array(x: np.ndarray) -> np.ndarray:
    # uint64 array arithmetic wraps modulo 2**64 silently (no overflow checks for arrays).
    z = np.asarray(x, dtype=np.uint64) + np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def splitmix64(x: IntOrArray) -> IntOrArray:
    """Apply the SplitMix64 finaliser.

    Parameters
    ----------
    x : int or numpy.ndarray
        A Python int (reduced mod 2**64) or an array of unsigned 64-bit integers
        (any integer array is converted to ``uint64``).

    Returns
    -------
    int or numpy.ndarray
        A Python int in ``[0, 2**64)`` for int input, else a ``uint64`` array of the same shape.
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "ui":
            raise TypeError(f"x must be an integer array, got dtype {x.dtype}")
        return _splitmix64_array(x.astype(np.uint64, copy=False))
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return _splitmix64_int(int(x) & MASK64)
    raise TypeError(f"x must be an int or an integer ndarray, got {type(x).__name__}")


def mix(a: int, b: int) -> int:
    """Combine two 64-bit integers: ``splitmix64(a ^ splitmix64(b))``.

    Parameters
    ----------
    a, b : int
        Python ints, reduced mod 2**64.

    Returns
    -------
    int
        A Python int in ``[0, 2**64)``.
    """
    return _splitmix64_int((int(a) & MASK64) ^ _splitmix64_int(int(b) & MASK64))


def uniform(u: IntOrArray) -> Union[float, np.ndarray]:
    """Map 64 random bits to a double in ``[0, 1)``: ``(u >> 11) * 2**-53``.

    Parameters
    ----------
    u : int or numpy.ndarray
        Python int or ``uint64`` array.

    Returns
    -------
    float or numpy.ndarray
        float64 value(s) in ``[0, 1)`` (exact: 53-bit integers are representable).
    """
    if isinstance(u, np.ndarray):
        top = (u.astype(np.uint64, copy=False) >> np.uint64(11)).astype(np.float64)
        return top * (2.0 ** -53)
    return float((int(u) & MASK64) >> 11) * (2.0 ** -53)


def mulhi64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """High 64 bits of the 128-bit product of two ``uint64`` arrays (elementwise).

    Parameters
    ----------
    a, b : numpy.ndarray
        ``uint64`` arrays (broadcastable).

    Returns
    -------
    numpy.ndarray
        ``(a * b) >> 64`` as ``uint64``.
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo, a_hi = a & m32, a >> s32
    b_lo, b_hi = b & m32, b >> s32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    # Each partial product fits in 64 bits; add the middle terms with explicit carries.
    cross = (lo_lo >> s32) + (hi_lo & m32) + lo_hi
    return hi_hi + (hi_lo >> s32) + (cross >> s32)


def dropout_base(seed: int, step: int, layer_index: int) -> int:
    """Per-(step, layer) stream base: ``mix(mix(mix(seed, 1), step), layer_index)``."""
    return mix(mix(mix(seed, 1), step), layer_index)


def dropout_mask(
    seed: int, step: int, layer_index: int, shape: Sequence[int], rate: float
) -> np.ndarray:
    """Boolean keep-mask of a dropout layer for one training forward pass.

    Element ``i`` (row-major over ``shape``) is kept iff
    ``uniform(splitmix64(base + i)) >= rate`` with ``base = dropout_base(seed, step, layer_index)``.
    The caller multiplies kept values by ``1 / (1 - rate)``.

    Parameters
    ----------
    seed : int
        Engine seed.
    step : int
        Training forward number (the engine's ``step_counter``).
    layer_index : int
        Index of the dropout layer in the flat pre-order walk of the spec.
    shape : sequence of int
        Shape of the activations, e.g. ``(batch, dim)``.
    rate : float
        Drop probability in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``shape``; ``True`` where the element is kept.
    """
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    base = np.uint64(dropout_base(seed, step, layer_index))
    counters = base + np.arange(size, dtype=np.uint64)  # wraps mod 2**64
    u = uniform(_splitmix64_array(counters))
    return np.asarray(u >= float(rate)).reshape(shape)


def shuffle_base(seed: int, epoch: int) -> int:
    """Per-epoch shuffle stream base: ``mix(mix(seed, 2), epoch)``."""
    return mix(mix(seed, 2), epoch)


def shuffle_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Permutation of ``range(n)`` for one shuffled epoch (Fisher–Yates, ENGINE.md).

    ``perm = arange(n)``; for ``i = n-1`` down to ``1``:
    ``j = (splitmix64(base + i) * (i + 1)) >> 64`` (128-bit product), swap ``perm[i], perm[j]``.

    Parameters
    ----------
    seed : int
        Engine seed.
    epoch : int
        The engine's ``epoch_counter``.
    n : int
        Number of samples (``>= 0``).

    Returns
    -------
    numpy.ndarray
        ``int64`` permutation of ``range(n)``.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    perm = np.arange(n, dtype=np.int64)
    if n < 2:
        return perm
    base = np.uint64(shuffle_base(seed, epoch))
    i = np.arange(1, n, dtype=np.uint64)
    j = mulhi64(_splitmix64_array(base + i), i + np.uint64(1)).astype(np.int64)
    p = perm.tolist()
    jl = j.tolist()
    for k in range(n - 1, 0, -1):
        jj = jl[k - 1]
        p[k], p[jj] = p[jj], p[k]
    return np.asarray(p, dtype=np.int64)


def _shuffle_permutation_slow(seed: int, epoch: int, n: int) -> np.ndarray:
    """Literal Python-int transcription of the spec (used by the tests)."""
    base = shuffle_base(seed, epoch)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = (_splitmix64_int((base + i) & MASK64) * (i + 1)) >> 64
        perm[i], perm[j] = perm[j], perm[i]
    return np.asarray(perm, dtype=np.int64)
