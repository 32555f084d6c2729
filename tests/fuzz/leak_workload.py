"""LeakSanitizer workload (.ci/sanitize.sh): every native entry point, accepted and rejected
calls, many times, then exit. Run under LD_PRELOAD=libasan with detect_leaks=1."""
import gc

import numpy as np

import fastbp as fb
from fastbp import _core

rng = np.random.default_rng(0)
X = rng.standard_normal((33, 8))
y = rng.integers(0, 3, 33)
for dtype in ("float32", "float64"):
    for _ in range(20):
        m = fb.Sequential([fb.Dense(16, "gelu"), fb.Dropout(0.1), fb.BatchNorm(),
                           fb.Residual([fb.Dense(16, "tanh")]), fb.LayerNorm(), fb.Dense(3)],
                          input_dim=8, dtype=dtype, seed=1)
        opt = fb.optim.Adam(lr=1e-3, amsgrad=True)
        for _ in range(5):
            m.train_step(X, y, "softmax_cross_entropy", opt)
            m.predict(X[::2])
            m.loss_and_gradients(np.asfortranarray(X), y, "softmax_cross_entropy")
        m.fit(X, y, loss="softmax_cross_entropy", epochs=2, batch_size=10, progress=False)
        st = m._engine.optimizer_state()
        m._engine.set_optimizer_state(st)
        m._engine.set_rng_state(*m._engine.rng_state())
        views = m.parameters()
        for bad in (np.full((4, 8), np.nan), np.ones((4, 7)), np.ones((0, 8)), np.ones((4, 8), complex)):
            try:
                m.train_step(bad, y[:4], "softmax_cross_entropy", opt)
            except (TypeError, ValueError):
                pass
        for bad_state in ({"step": -1}, {**st, "exp_avg": np.zeros(3)}):
            try:
                m._engine.set_optimizer_state(bad_state)
            except (TypeError, ValueError):
                pass
        try:
            fb.MLP([10**12, 1])
        except MemoryError:
            pass
        try:
            _core.Network32([{"type": "dense", "in": 2, "out": 2}, {"type": "conv", "dim": 2}], 0)
        except ValueError:
            pass
        del m, views
        gc.collect()
print("leak workload done")
