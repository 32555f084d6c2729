"""fastbp: fast backpropagation for multilayer perceptrons on the CPU.

A C++/OpenMP engine behind a small Python API, checked against a pure-NumPy reference
(``backend="reference"``).
"""
from . import callbacks, metrics, optim, registry, schedules
from ._runtime import get_isa, get_num_threads, info, set_isa, set_num_threads
from ._version import __version__
from .ensemble import Ensemble, load_ensemble
from .io import from_sklearn, from_torch
from .layers import Activation, BatchNorm, Dense, Dropout, LayerNorm, Residual
from .model import MLP, Sequential, get_check_finite, load, set_check_finite
from .plotting import plot_history
from .training import History

__all__ = [
    "__version__", "MLP", "Sequential", "Dense", "Activation", "Dropout", "BatchNorm",
    "LayerNorm", "Residual", "History", "optim", "info", "set_num_threads", "get_num_threads",
    "get_isa", "set_isa", "set_check_finite", "get_check_finite", "callbacks", "schedules", "metrics",
    "registry", "load", "plot_history", "from_torch", "from_sklearn", "Ensemble",
    "load_ensemble",
]
