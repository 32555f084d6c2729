"""Threads, instruction set and build information."""
from __future__ import annotations

import os
from typing import Any, Dict

from . import _core
from ._version import __version__

__all__ = ["set_num_threads", "get_num_threads", "info", "set_isa", "get_isa"]


_USER_THREADS = [False]  # set_num_threads was called (the MPI/dask thread rule then defers)


def set_num_threads(n: int) -> None:
    """Threads the native kernels use (OpenMP); by default ``OMP_NUM_THREADS`` or all cores
    (``cores // local ranks`` in data-parallel training, see :mod:`fastbp.distributed`)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    _core.set_num_threads(n)
    _USER_THREADS[0] = True


def threads_chosen_by_user() -> bool:
    """Whether :func:`set_num_threads` was called in this process."""
    return _USER_THREADS[0]


def _set_threads(n: int) -> None:
    """Set the thread count by a default rule (not a user choice)."""
    _core.set_num_threads(int(n))


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
        "openmp": str(_core.openmp_runtime()),
        "FASTBP_ISA": os.environ.get("FASTBP_ISA"),
    }
