"""A model as a tree of layers with their arrays, shared by every exchange format.

:func:`layer_tree` pairs each entry of ``model.spec`` with the live arrays it owns, in the
order ``model.parameters()`` and ``model.buffers()`` list them (depth-first through residual
blocks): dense ``(W (in, out), b)``, batchnorm and layernorm ``(gamma, beta)``, batchnorm
buffers ``(running_mean, running_var)``.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..checkpoint import atomic_write  # noqa: F401  (re-exported for fastbp.io)

__all__ = ["Node", "layer_tree", "atomic_write", "missing_extra"]

#: Number of parameter and buffer arrays each layer kind owns.
_N_PARAMS = {"dense": 2, "batchnorm": 2, "layernorm": 2}
_N_BUFFERS = {"batchnorm": 2}


class Node:
    """One layer: its spec dict, its parameter and buffer arrays, and (residual) children."""

    __slots__ = ("spec", "params", "buffers", "children")

    def __init__(self, spec: Dict[str, Any], params: List[np.ndarray],
                 buffers: List[np.ndarray], children: List["Node"]):
        self.spec = spec
        self.params = params
        self.buffers = buffers
        self.children = children

    @property
    def kind(self) -> str:
        return str(self.spec["type"])


def _build(spec: Sequence[Dict[str, Any]], params: Iterator[np.ndarray],
           buffers: Iterator[np.ndarray]) -> List[Node]:
    out = []
    for d in spec:
        kind = d["type"]
        children = _build(d["layers"], params, buffers) if kind == "residual" else []
        p = [next(params) for _ in range(_N_PARAMS.get(kind, 0))]
        b = [next(buffers) for _ in range(_N_BUFFERS.get(kind, 0))]
        out.append(Node(d, p, b, children))
    return out


def layer_tree(model: Any) -> List[Node]:
    """The layers of ``model`` (a :class:`fastbp.Sequential`) as a list of :class:`Node`.

    Parameters
    ----------
    model : fastbp.Sequential

    Returns
    -------
    list of Node
        Arrays are the model's live views (writing into them changes the model).
    """
    params, buffers = model.parameters(), model.buffers()
    pi, bi = iter(params), iter(buffers)
    try:
        tree = _build(model.spec, pi, bi)
    except StopIteration:
        raise ValueError("the model's spec and its parameter list disagree") from None
    if next(pi, None) is not None or next(bi, None) is not None:
        raise ValueError("the model's spec and its parameter list disagree")
    return tree


def missing_extra(package: str, extra: str, what: str,
                  exc: Optional[BaseException] = None) -> ImportError:
    """The ImportError raised when an optional dependency is missing."""
    err = ImportError(f"{what} needs the {package!r} package: pip install 'fastbp[{extra}]' "
                      f"(or pip install {package})")
    if exc is not None:
        err.__cause__ = exc
    return err
