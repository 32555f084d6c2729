"""The arrays the optimizer pass streams together start at staggered offsets modulo 4 KiB
(core/stream_vector.h): where malloc happened to put them used to decide whether a
digits-size Adam pass took 3 or 8 us (4K aliasing between its loads and stores)."""
import numpy as np
import pytest

import fastbp as fb


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameter_gradient_and_buffer_arenas_are_staggered(dtype):
    for _ in range(5):  # several models: the offsets do not depend on where malloc is
        m = fb.Sequential([fb.Dense(128, "relu"), fb.BatchNorm(), fb.Dense(10)], input_dim=64,
                          dtype=dtype, seed=0)
        e = m.engine
        starts = [e.arena().ctypes.data, e.grad_arena().ctypes.data,
                  m.buffers()[0].ctypes.data]
        offsets = sorted(s % 4096 for s in starts)
        gaps = np.diff(offsets + [offsets[0] + 4096])
        assert gaps.min() >= 576, offsets
