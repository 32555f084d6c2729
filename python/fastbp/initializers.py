"""Parameter initialisation shared by both backends (seeded, NumPy)."""
from __future__ import annotations

import numpy as np

_RELU_FAMILY = {"relu", "leaky_relu", "elu"}


def _walk(spec):
    for layer in spec:
        yield layer
        if layer["type"] == "residual":
            yield from _walk(layer["layers"])


def init_parameters(spec: list, params: list, buffers: list, seed: int) -> None:
    """Fill the live parameter and buffer views in place (see docs/ENGINE.md)."""
    rng = np.random.default_rng(seed)
    pi = bi = 0
    for layer in _walk(spec):
        t = layer["type"]
        if t == "dense":
            W, b = params[pi], params[pi + 1]
            pi += 2
            fan_in, fan_out = layer["in"], layer["out"]
            name = layer.get("init") or (
                "he_uniform" if layer.get("activation") in _RELU_FAMILY else "glorot_uniform")
            if name in ("he_uniform", "kaiming_uniform"):
                bound = np.sqrt(6.0 / fan_in)
                W[...] = rng.uniform(-bound, bound, size=W.shape)
            elif name in ("glorot_uniform", "xavier_uniform"):
                bound = np.sqrt(6.0 / (fan_in + fan_out))
                W[...] = rng.uniform(-bound, bound, size=W.shape)
            else:
                raise ValueError(f"unknown init {name!r}")
            b[...] = 0
        elif t in ("batchnorm", "layernorm"):
            params[pi][...] = 1
            params[pi + 1][...] = 0
            pi += 2
            if t == "batchnorm":
                buffers[bi][...] = 0
                buffers[bi + 1][...] = 1
                bi += 2
