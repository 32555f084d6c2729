"""The backend factory: the one place that builds an engine, native or reference.

The NumPy reference (``fastbp.reference``) is the test oracle; the library reaches it only
through :func:`make_engine`, when a user asks for ``backend="reference"``.
"""
from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["BACKENDS", "make_engine"]

BACKENDS = ("native", "reference")


def make_engine(spec: List[Dict[str, Any]], dtype: str, seed: int, backend: str) -> Any:
    """Build the engine of ``backend`` for a layer spec.

    Parameters
    ----------
    spec : list of dict
        The layer spec (``fastbp.layers.Layer.to_dict`` entries).
    dtype : {"float32", "float64"}
    seed : int
        Seeds the dropout and shuffle streams.
    backend : {"native", "reference"}

    Returns
    -------
    object
        ``fastbp._core.Network32`` / ``Network64``, or ``fastbp.reference.Engine``: both
        implement the engine contract of docs/ENGINE.md.
    """
    if backend == "native":
        from . import _core

        cls = _core.Network32 if dtype == "float32" else _core.Network64
        return cls(spec, seed)
    if backend == "reference":
        from .reference import Engine

        return Engine(spec, dtype, seed)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
