"""Conversion of user data to the arrays the engines take, done once per public call.

Conversion only: values are checked by the engine entry that receives them (the native
bindings, or the reference engine), which is the one place that validates a batch
(docs/ARCHITECTURE.md, "Validation"). Whatever cannot be converted is passed on unchanged so
that the engine reports it with its own error.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from .registry import loss_param_names

__all__ = ["as_model_array", "as_target", "check_loss_kwargs", "no_rescan"]


_INT64 = np.dtype(np.int64)
_NO_RESCAN: Tuple[bool, ...] = (False,)
_RESCAN: Tuple[bool, ...] = ()


def no_rescan(model: Any) -> Tuple[bool, ...]:
    """The trailing positional argument of an engine call on data already checked for NaN/Inf
    (by ``fit``, or by scikit-learn's ``validate_data``): ``check_finite=False`` for the native
    engine, nothing for the reference engine, which always checks. Passed as ``*no_rescan(m)``
    right after the call's other arguments: positionally, because a keyword argument costs a
    pybind11 call about 0.6 us (it interns every parameter name), a tenth of a tiny epoch."""
    return _NO_RESCAN if model.backend == "native" else _RESCAN


def as_model_array(a: Any, dtype: np.dtype, kinds: str = "fiub") -> Any:
    """``a`` as an aligned, C-contiguous array of ``dtype`` when it holds real numbers of one
    of ``kinds`` (no copy when it already is one); otherwise ``a`` as it came (or as
    ``numpy.asarray`` made it), for the engine to reject.

    Strided, negative-stride, Fortran-ordered, misaligned and byte-swapped arrays are copied;
    values too large for ``dtype`` become Inf (the engine's finite check catches them).
    """
    if type(a) is np.ndarray and a.dtype is dtype and a.flags.carray:
        return a  # the common case, checked cheaply (carray: C-contiguous, aligned, writeable)
    if (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
            and a.flags.aligned):
        return a
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):  # ragged nested sequences and the like
        return a
    if arr.dtype.kind not in kinds:
        return arr
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.aligned:  # ascontiguousarray keeps a misaligned buffer as it is
        out = out.copy()
    return out


def as_target(y: Any, dtype: np.dtype, takes_labels: bool) -> Any:
    """Targets: 1-D integer class labels as int64 when the loss takes labels, else values as
    :func:`as_model_array` (booleans are not converted: no loss takes them)."""
    if type(y) is np.ndarray:  # (no np.asarray on the per-step path)
        if not (takes_labels and y.ndim == 1):
            return as_model_array(y, dtype, kinds="fiu")
        if y.dtype is _INT64 and y.flags.carray:
            return y  # labels as the engine takes them
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError):
        return y
    if takes_labels and arr.ndim == 1:
        if arr.dtype.kind not in "iu" or (arr.dtype.kind == "u" and arr.dtype.itemsize == 8):
            # not labels: the engine rejects them, naming the dtype given (not a converted
            # one); uint64 values above 2**63 would wrap in int64: the engine checks the range
            return arr
        out = np.ascontiguousarray(arr, dtype=np.int64)
        return out if out.flags.aligned else out.copy()  # (as as_model_array: aligned loads)
    return as_model_array(arr, dtype, kinds="fiu")


def check_loss_kwargs(where: str, loss_params: Dict[str, Any]) -> None:
    """Keyword arguments of ``train_step`` / ``fit`` ... that no loss takes: TypeError, as for
    any unexpected keyword argument."""
    if not loss_params:
        return
    unknown = sorted(set(loss_params) - set(loss_param_names()))
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r} (loss "
                        f"parameters are {', '.join(loss_param_names())})")
