"""PyTorch state_dict names for a fastbp model, without importing torch.

The names are those of the ``nn.Sequential`` that :func:`fastbp.io.torch.to_torch` builds:
one child index per spec entry, plus one after a dense layer with a non-identity activation;
residual blocks nest (``"2.0.weight"``). Dense: ``<i>.weight`` (out, in) = W.T and
``<i>.bias``; batchnorm: ``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked`` (int64 scalar); layernorm: ``weight``, ``bias``.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from ._tree import Node, layer_tree

__all__ = ["torch_entries", "as_torch_layout"]

#: (name, live fastbp array, transposed?) — or, for num_batches_tracked, (name, None, False).
Entry = Tuple[str, Any, bool]


def _entries(nodes: List[Node], prefix: str) -> List[Entry]:
    out: List[Entry] = []
    i = 0
    for node in nodes:
        p = f"{prefix}{i}."
        kind = node.kind
        if kind == "dense":
            out += [(p + "weight", node.params[0], True), (p + "bias", node.params[1], False)]
            if node.spec.get("activation", "identity") != "identity":
                i += 1
        elif kind == "batchnorm":
            out += [(p + "weight", node.params[0], False), (p + "bias", node.params[1], False),
                    (p + "running_mean", node.buffers[0], False),
                    (p + "running_var", node.buffers[1], False),
                    (p + "num_batches_tracked", None, False)]
        elif kind == "layernorm":
            out += [(p + "weight", node.params[0], False), (p + "bias", node.params[1], False)]
        elif kind == "residual":
            out += _entries(node.children, p)
        i += 1
    return out


def torch_entries(model: Any) -> List[Entry]:
    """Every state_dict entry of ``to_torch(model)``, in order.

    Parameters
    ----------
    model : fastbp.Sequential

    Returns
    -------
    list of (str, numpy.ndarray or None, bool)
        Name, the live fastbp array it comes from (None for BatchNorm's
        ``num_batches_tracked``) and whether torch's layout is its transpose.
    """
    return _entries(layer_tree(model), "")


def as_torch_layout(arr: np.ndarray, transposed: bool) -> np.ndarray:
    """A C-contiguous copy of ``arr`` in torch's layout."""
    return np.ascontiguousarray(arr.T if transposed else arr)
