"""Shared test fixtures.

``isa``: runs a test once per instruction set this CPU supports (generic, avx2, avx512),
switching the native kernels at run time and restoring the default afterwards.
"""
import numpy as np
import pytest

import fastbp as fb
from fastbp import _core

SUPPORTED_ISAS = list(_core.supported_isas())


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    before = fb.get_isa()
    fb.set_isa(request.param)
    yield request.param
    fb.set_isa(before)


def tol(dtype, reduction=1):
    """(rtol, atol) for comparing native with reference: a few ulps times the length of the
    longest reduction, for the dtype."""
    eps = np.finfo(dtype).eps
    r = 64 * eps * max(1.0, float(reduction)) ** 0.5
    return r, r
