"""The registries: the one source of every name, alias and default the library knows.

Each concept — activations, losses, optimizers, layer kinds, instruction sets — is defined
once, in the native engine (``src/cpp``, see docs/ARCHITECTURE.md), and read here from
``fastbp._core.registry()``. The Python API, the checkpoint format, the scikit-learn
estimators and the NumPy reference all take their names and defaults from this module; the
tests check that the reference implements every entry.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["registry", "activations", "activation_defaults", "resolve_activation", "losses",
           "resolve_loss", "resolve_loss_labels", "loss_takes_labels", "loss_param_names", "optimizers",
           "optimizer_defaults", "layer_kinds", "isas"]


@lru_cache(maxsize=1)
def registry() -> Dict[str, Any]:
    """The native module's registry (a dict; see ``fastbp._core.registry``)."""
    from . import _core

    return _core.registry()


def activations() -> Tuple[str, ...]:
    """Activation names, in the engine's order."""
    return tuple(registry()["activations"])


def activation_defaults(name: str) -> Dict[str, float]:
    """The parameters of activation ``name`` with their defaults (e.g. ``{"alpha": 0.01}``)."""
    return dict(registry()["activations"][resolve_activation(name)]["params"])


def resolve_activation(name: Any) -> str:
    """The canonical name of an activation (aliases resolved; ``None`` is ``identity``)."""
    reg = registry()
    key = "identity" if name is None else name
    if isinstance(key, str):
        key = reg["activation_aliases"].get(key, key)
    if not isinstance(key, str) or key not in reg["activations"]:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{', '.join(reg['activations'])}")
    return key


def losses() -> Tuple[str, ...]:
    """Loss names, in the engine's order."""
    return tuple(registry()["losses"])


def resolve_loss(name: Any) -> str:
    """The canonical name of a loss (aliases resolved); ValueError if unknown."""
    return resolve_loss_labels(name)[0]


def resolve_loss_labels(name: Any) -> Tuple[str, bool]:
    """The canonical name of a loss and whether it accepts 1-D integer class labels as
    targets; ValueError if unknown. (Every train_step asks: one dict lookup once known.)"""
    if isinstance(name, str):
        known = _LOSS_NAMES.get(name)
        if known is not None:
            return known
    reg = registry()
    key = reg["loss_aliases"].get(name, name) if isinstance(name, str) else name
    if not isinstance(key, str) or key not in reg["losses"]:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(reg['losses'])}")
    entry = (key, bool(reg["losses"][key]["labels"]))
    _LOSS_NAMES[name] = entry
    return entry


# name or alias -> (canonical name, takes labels), filled by resolve_loss_labels
_LOSS_NAMES: Dict[str, Tuple[str, bool]] = {}


def loss_takes_labels(name: str) -> bool:
    """Whether loss ``name`` accepts 1-D integer class labels as targets."""
    return resolve_loss_labels(name)[1]


@lru_cache(maxsize=1)
def loss_param_names() -> Tuple[str, ...]:
    """Keyword parameters of the losses (e.g. huber's ``delta``) and the penalties."""
    names: List[str] = []
    for info in registry()["losses"].values():
        names.extend(k for k in info["params"] if k not in names)
    return tuple(names) + ("l1", "l2")


def optimizers() -> Tuple[str, ...]:
    """Optimizer names."""
    return tuple(registry()["optimizers"])


def optimizer_defaults(name: str) -> Dict[str, Any]:
    """Every hyper-parameter of optimizer ``name`` with its default, in torch's order."""
    return dict(registry()["optimizers"][name]["hyper"])


def layer_kinds() -> Dict[str, Dict[str, Any]]:
    """Layer kinds: their spec fields with defaults, parameter and buffer names."""
    return registry()["layers"]


def isas(supported: Optional[bool] = None) -> Tuple[str, ...]:
    """Instruction-set names the engine knows (``supported=True``: those this CPU runs)."""
    if supported:
        from . import _core

        return tuple(_core.supported_isas())
    return tuple(registry()["isas"])
