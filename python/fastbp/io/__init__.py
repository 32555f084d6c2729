"""Exchange formats: ONNX, PyTorch, safetensors, scikit-learn, skl2onnx.

Each format lives in its own submodule and imports its optional dependency only when used:

* :mod:`fastbp.io.onnx` — ``model.to_onnx(path)`` (needs ``onnx``: ``fastbp[onnx]``);
* :mod:`fastbp.io.torch` — ``model.to_torch()``, :func:`from_torch` (needs ``torch``);
* :mod:`fastbp.io.safetensors` — ``model.save("m.safetensors")``, :func:`load` (NumPy only);
* :mod:`fastbp.io.sklearn` — :func:`from_sklearn`, ``est.to_sklearn()`` (``fastbp[sklearn]``);
* :mod:`fastbp.io.skl2onnx` — :func:`register_skl2onnx` (needs ``skl2onnx``).
"""
from __future__ import annotations

import os
from typing import Any, Optional

__all__ = ["load", "from_torch", "from_sklearn", "register_skl2onnx"]


def load(path: Any, backend: Optional[str] = None, **kwargs: Any) -> Any:
    """Load a model saved by ``model.save``: a fastbp ``.npz`` checkpoint or a
    ``.safetensors`` file (told apart by their content, not their name).

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"native", "reference"}, optional
        Override the saved backend.
    **kwargs
        Passed on to the loader of the file's format (:func:`fastbp.checkpoint.load` or
        :func:`fastbp.io.safetensors.load`).

    Returns
    -------
    Sequential or MLP
        Parameters, buffers, optimizer state, counters and RNG state restored.

    Raises
    ------
    ValueError
        If the file is not a valid fastbp checkpoint or fastbp safetensors file.
    """
    from .safetensors import is_safetensors

    path = os.fspath(path)
    if is_safetensors(path):
        from .safetensors import load as load_st

        return load_st(path, backend=backend, **kwargs)
    from ..checkpoint import load as load_npz

    return load_npz(path, backend=backend, **kwargs)


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
