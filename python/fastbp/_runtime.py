"""Threads, instruction set and build information."""
from __future__ import annotations

import numbers
import operator
import os
from typing import Any, Dict

import numpy as np

from . import _core
from ._version import __version__

__all__ = ["set_num_threads", "get_num_threads", "max_num_threads", "info", "set_isa", "get_isa"]


_USER_THREADS = [False]  # set_num_threads was called (the MPI/dask thread rule then defers)


def set_num_threads(n: int) -> None:
    """Set the threads the native kernels use (OpenMP), process-wide.

    Parameters
    ----------
    n : int
        Any integer type (``int``, ``np.int64``, ...) in ``[1, max_num_threads()]``; the
        bound is 4 threads per logical CPU (at least 4, at most 1024). By default the kernels
        use ``OMP_NUM_THREADS`` or all cores (also capped at the bound); in data-parallel
        training ``cores // local ranks`` (:mod:`fastbp.distributed`) unless this was called.

    Raises
    ------
    TypeError
        If ``n`` is not an integer (``bool``, ``float``, ``str`` ...).
    ValueError
        If ``n`` is outside ``[1, max_num_threads()]``.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {n!r}")
    n = operator.index(n)
    bound = max_num_threads()
    if not 1 <= n <= bound:
        raise ValueError(f"n must be in [1, {bound}] (4 threads per logical CPU), got {n!r}")
    _core.set_num_threads(n)
    _USER_THREADS[0] = True


def threads_chosen_by_user() -> bool:
    """Whether :func:`set_num_threads` was called in this process."""
    return _USER_THREADS[0]


def _set_threads(n: int) -> None:
    """Set the thread count by a default rule (not a user choice)."""
    _core.set_num_threads(int(n))


def max_num_threads() -> int:
    """The upper bound of :func:`set_num_threads`: 4 per logical CPU, in ``[4, 1024]``."""
    return int(_core.max_threads())


def get_num_threads() -> int:
    """Threads the native kernels use."""
    return int(_core.get_num_threads())


def get_isa() -> str:
    """Instruction set the kernels use: generic, avx2 or avx512."""
    return str(_core.get_isa())


def set_isa(name: str) -> None:
    """Force the kernels' instruction set (as ``FASTBP_ISA`` does at import)."""
    _core.set_isa(name)


def info() -> Dict[str, Any]:
    """Version, instruction set in use and supported, threads, OpenMP runtime."""
    return {
        "version": __version__,
        "isa": get_isa(),
        "supported_isas": list(_core.supported_isas()),
        "num_threads": get_num_threads(),
        "max_num_threads": max_num_threads(),
        "fork_serial": bool(_core.fork_serial()),
        "openmp": str(_core.openmp_runtime()),
        "FASTBP_ISA": os.environ.get("FASTBP_ISA"),
    }
