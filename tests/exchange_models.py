"""Models used by the exchange-format tests: every layer kind and activation, trained a
little so that BatchNorm statistics and optimizer state are not at their initial values."""
import numpy as np

import fastbp as fb

ACTS = list(fb.layers.ACTIVATIONS)


def zoo(act="relu", dtype="float64", seed=0, backend="native", train=True):
    """A model with every layer kind (dense, batchnorm, residual with layernorm, dropout,
    standalone activation), using ``act``, trained for two epochs with Adam."""
    alpha = {"leaky_relu": 0.2, "elu": 0.7}.get(act)
    model = fb.Sequential([
        fb.Dense(9, activation=act, alpha=alpha), fb.BatchNorm(),
        fb.Residual([fb.LayerNorm(), fb.Dense(9, activation=act, alpha=alpha), fb.BatchNorm()]),
        fb.Dropout(0.2), fb.Activation(act, alpha=alpha), fb.Dense(3)],
        input_dim=7, dtype=dtype, seed=seed, backend=backend)
    if train:
        X, y = data(dtype, n=34)
        model.fit(X, y, loss="mse", optimizer=fb.optim.Adam(lr=1e-2), epochs=2, batch_size=8)
    return model


def data(dtype="float64", n=33, seed=1):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 7)) * 3).astype(dtype)
    return X, np.tanh(X[:, :3]).astype(dtype)
