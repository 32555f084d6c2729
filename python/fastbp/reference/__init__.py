"""fastbp.reference: the pure-NumPy reference backend (the oracle for every test).

Submodules: :mod:`~fastbp.reference.rng`, :mod:`~fastbp.reference.activations`,
:mod:`~fastbp.reference.losses`, :mod:`~fastbp.reference.optimizers`,
:mod:`~fastbp.reference.engine`.
"""
from . import activations, engine, losses, optimizers, rng
from .engine import Engine

__all__ = ["Engine", "activations", "engine", "losses", "optimizers", "rng"]
