"""Exchange formats: ONNX, PyTorch, safetensors, scikit-learn, skl2onnx.

Each format lives in its own submodule and imports its optional dependency only when used:

* :mod:`fastbp.io.onnx` — ``model.to_onnx(path)`` (needs ``onnx``: ``fastbp[onnx]``);
* :mod:`fastbp.io.torch` — ``model.to_torch()``, :func:`from_torch` (needs ``torch``);
* :mod:`fastbp.io.safetensors` — ``model.save("m.safetensors")``, ``fastbp.load`` (NumPy
  only);
* :mod:`fastbp.io.sklearn` — :func:`from_sklearn`, ``est.to_sklearn()`` (``fastbp[sklearn]``);
* :mod:`fastbp.io.skl2onnx` — :func:`register_skl2onnx` (needs ``skl2onnx``).
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["from_sklearn", "from_torch", "register_skl2onnx"]


def from_torch(module: Any, input_dim: Optional[int] = None, seed: int = 0,
               backend: str = "native") -> Any:
    """A fastbp model equal to a torch ``nn.Sequential``; see :func:`fastbp.io.torch.from_torch`."""
    from .torch import from_torch as _from_torch

    return _from_torch(module, input_dim=input_dim, seed=seed, backend=backend)


def from_sklearn(estimator: Any) -> Any:
    """A fitted fastbp.sklearn estimator equal to a fitted scikit-learn
    ``MLPClassifier``/``MLPRegressor``; see :func:`fastbp.io.sklearn.from_sklearn`."""
    from .sklearn import from_sklearn as _from_sklearn

    return _from_sklearn(estimator)


def register_skl2onnx() -> None:
    """Register skl2onnx converters for fastbp.sklearn's estimators; see
    :func:`fastbp.io.skl2onnx.register`."""
    from .skl2onnx import register

    register()
