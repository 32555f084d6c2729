"""ONNX export: ``model.to_onnx(path, opset=None)``.

The graph computes ``model.predict`` (inference mode): input ``"input"`` of shape
``("batch", input_dim)`` in the model's dtype, output ``"output"`` (``"batch",
output_dim``), the batch dimension dynamic.

=================  =====================================================================
fastbp layer       ONNX nodes
=================  =====================================================================
dense              ``Gemm(x, W, b)`` (W stored (in, out)), then the activation
activation         the activation
dropout            none (the identity at inference)
batchnorm          ``BatchNormalization`` with the running statistics
layernorm          ``LayerNormalization`` (opset >= 17; below, mean and variance as MatMuls)
residual           ``Add(x, block(x))``
=================  =====================================================================

Activations are the ONNX operators where onnxruntime's CPU provider implements them in the
model's dtype (float32: ``LeakyRelu``, ``Elu``, ``Softplus``, ``Erf``, ``HardSwish``,
``Mish``), otherwise the same formula in elementary operators (``Where``, ``Exp``, ``Log``,
``Mul``, ...). softplus keeps fastbp's (and torch's) threshold: ``x`` where ``x > 20``.
onnxruntime has no float64 ``Erf``, so a float64 model's gelu evaluates ``erf`` in float32
(``Cast`` around ``Erf``): its outputs agree with ``predict`` to float32 rounding, every other
float64 layer to float64 rounding.

Needs the ``onnx`` package (``pip install 'fastbp[onnx]'``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ._tree import Node, atomic_write, layer_tree, missing_extra

__all__ = ["to_onnx", "to_model_proto", "GraphBuilder", "emit_layers", "DEFAULT_OPSET",
           "MIN_OPSET"]

#: Opset used when ``opset=None`` (LayerNormalization is an operator from 17 on).
DEFAULT_OPSET = 17
MIN_OPSET = 13


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise missing_extra("onnx", "onnx", "ONNX export", exc) from exc
    return onnx


class GraphBuilder:
    """Collects ONNX nodes (op type, inputs, outputs, attributes) and constant arrays, with
    names made unique by a prefix; :func:`to_model_proto` and the skl2onnx converter turn
    them into a graph.

    Parameters
    ----------
    dtype : numpy.dtype
        float32 or float64: constants are stored in it.
    opset : int
    prefix : str
        Prepended to every name created.
    namer : callable, optional
        Makes a unique name from a base name (e.g. skl2onnx's
        ``scope.get_unique_variable_name``); default: prefix + base + a counter.
    """

    def __init__(self, dtype: Any, opset: int, prefix: str = "",
                 namer: Optional[Callable[[str], str]] = None):
        self.dtype = np.dtype(dtype)
        self.opset = int(opset)
        self.prefix = prefix
        self.namer = namer
        self.nodes: List[Tuple[str, List[str], List[str], Dict[str, Any]]] = []
        self.constants: Dict[str, np.ndarray] = {}
        self._count = 0

    @property
    def native(self) -> bool:
        """Whether onnxruntime implements the activation operators in this dtype."""
        return self.dtype == np.float32

    def name(self, base: str) -> str:
        """A new unique name."""
        if self.namer is not None:
            return self.namer(self.prefix + base)
        self._count += 1
        return f"{self.prefix}{base}_{self._count}"

    def const(self, base: str, value: Any, dtype: Any = None) -> str:
        """A constant (initializer) in the builder's dtype (or ``dtype``)."""
        name = self.name(base)
        self.constants[name] = np.array(value, dtype=dtype or self.dtype)
        return name

    def op(self, op_type: str, inputs: List[str], out: Optional[str] = None, **attrs: Any) -> str:
        """Add a node; returns its (single) output name."""
        out = out or self.name(op_type.lower())
        self.nodes.append((op_type, list(inputs), [out], attrs))
        return out


# ------------------------------------------------------------------------------ activations
def _softplus(b: GraphBuilder, x: str) -> str:
    over = b.op("Greater", [x, b.const("threshold", 20.0)])
    if b.native:
        soft = b.op("Softplus", [x])
    else:
        soft = b.op("Log", [b.op("Add", [b.op("Exp", [x]), b.const("one", 1.0)])])
    return b.op("Where", [over, x, soft])


def _gelu(b: GraphBuilder, x: str) -> str:
    scaled = b.op("Div", [x, b.const("sqrt2", math.sqrt(2.0))])
    if b.native:
        erf = b.op("Erf", [scaled])
    else:  # onnxruntime has no float64 Erf
        from onnx import TensorProto

        e32 = b.op("Erf", [b.op("Cast", [scaled], to=TensorProto.FLOAT)])
        erf = b.op("Cast", [e32], to=TensorProto.DOUBLE)
    return b.op("Div", [b.op("Mul", [x, b.op("Add", [b.const("one", 1.0), erf])]),
                        b.const("two", 2.0)])


def _elu(b: GraphBuilder, x: str, alpha: float) -> str:
    if b.native:
        return b.op("Elu", [x], alpha=alpha)
    neg = b.op("Sub", [b.op("Exp", [b.op("Min", [x, b.const("zero", 0.0)])]), b.const("one", 1.0)])
    pos = b.op("Greater", [x, b.const("zero", 0.0)])
    return b.op("Where", [pos, x, b.op("Mul", [b.const("alpha", alpha), neg])])


def _leaky_relu(b: GraphBuilder, x: str, alpha: float) -> str:
    if b.native:
        return b.op("LeakyRelu", [x], alpha=alpha)
    pos = b.op("Greater", [x, b.const("zero", 0.0)])
    return b.op("Where", [pos, x, b.op("Mul", [x, b.const("alpha", alpha)])])


def _hardswish(b: GraphBuilder, x: str) -> str:
    if b.native and b.opset >= 14:
        return b.op("HardSwish", [x])
    r6 = b.op("Min", [b.op("Max", [b.op("Add", [x, b.const("three", 3.0)]), b.const("zero", 0.0)]),
                      b.const("six", 6.0)])
    return b.op("Div", [b.op("Mul", [x, r6]), b.const("six", 6.0)])


def _mish(b: GraphBuilder, x: str) -> str:
    if b.native and b.opset >= 18:
        return b.op("Mish", [x])
    return b.op("Mul", [x, b.op("Tanh", [_softplus(b, x)])])


def emit_activation(b: GraphBuilder, name: str, alpha: Optional[float], x: str) -> str:
    """Nodes computing fastbp's activation ``name`` of ``x``; returns the output name."""
    simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
    if name == "identity":
        return x
    if name in simple:
        return b.op(simple[name], [x])
    if name == "silu":
        return b.op("Mul", [x, b.op("Sigmoid", [x])])
    if name == "leaky_relu":
        return _leaky_relu(b, x, 0.01 if alpha is None else float(alpha))
    if name == "elu":
        return _elu(b, x, 1.0 if alpha is None else float(alpha))
    if name == "gelu":
        return _gelu(b, x)
    if name == "softplus":
        return _softplus(b, x)
    if name == "mish":
        return _mish(b, x)
    if name == "hardswish":
        return _hardswish(b, x)
    raise ValueError(f"activation {name!r} has no ONNX export in fastbp.io.onnx")


# ------------------------------------------------------------------------------ layers
def _layernorm(b: GraphBuilder, node: Node, x: str) -> str:
    d = node.spec
    g = b.const("ln_scale", node.params[0])
    beta = b.const("ln_bias", node.params[1])
    if b.opset >= 17:
        return b.op("LayerNormalization", [x, g, beta], axis=-1, epsilon=float(d["eps"]))
    avg = b.const("ln_avg", np.full((d["dim"], 1), 1.0 / d["dim"]))
    xc = b.op("Sub", [x, b.op("MatMul", [x, avg])])
    var = b.op("MatMul", [b.op("Mul", [xc, xc]), avg])
    std = b.op("Sqrt", [b.op("Add", [var, b.const("eps", d["eps"])])])
    return b.op("Add", [b.op("Mul", [b.op("Div", [xc, std]), g]), beta])


def _layer(b: GraphBuilder, node: Node, x: str) -> str:
    d, kind = node.spec, node.kind
    if kind == "dense":
        W, bias = b.const("W", node.params[0]), b.const("b", node.params[1])
        z = b.op("Gemm", [x, W, bias])
        return emit_activation(b, d.get("activation", "identity"), d.get("alpha"), z)
    if kind == "activation":
        return emit_activation(b, d["activation"], d.get("alpha"), x)
    if kind == "dropout":
        return x
    if kind == "batchnorm":
        ins = [x] + [b.const(n, a) for n, a in zip(("bn_scale", "bn_bias"), node.params)] + \
              [b.const(n, a) for n, a in zip(("bn_mean", "bn_var"), node.buffers)]
        return b.op("BatchNormalization", ins, epsilon=float(d["eps"]))
    if kind == "layernorm":
        return _layernorm(b, node, x)
    if kind == "residual":
        return b.op("Add", [x, emit_layers(b, node.children, x)])
    raise ValueError(f"layer type {kind!r} has no ONNX export in fastbp.io.onnx")


def emit_layers(b: GraphBuilder, nodes: List[Node], x: str) -> str:
    """Nodes computing the layers ``nodes`` (see :func:`fastbp.io._tree.layer_tree`) of
    ``x``; returns the output name."""
    for node in nodes:
        x = _layer(b, node, x)
    return x


def _check_opset(opset: Optional[int]) -> int:
    onnx = _onnx()
    top = int(onnx.defs.onnx_opset_version())
    if opset is None:
        return min(DEFAULT_OPSET, top)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or \
            not MIN_OPSET <= opset <= top:
        raise ValueError(f"opset must be an integer in [{MIN_OPSET}, {top}], got {opset!r}")
    return int(opset)


def to_model_proto(model: Any, opset: Optional[int] = None) -> Any:
    """The ONNX ``ModelProto`` of ``model``'s inference graph (see the module docstring).

    Parameters
    ----------
    model : fastbp.Sequential
    opset : int, optional
        ONNX opset of the default domain, in ``[MIN_OPSET, onnx.defs.onnx_opset_version()]``;
        default :data:`DEFAULT_OPSET`.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker``.
    """
    onnx = _onnx()
    from onnx import helper, numpy_helper

    opset = _check_opset(opset)
    b = GraphBuilder(model.dtype, opset)
    out = emit_layers(b, layer_tree(model), "input")
    if out == "input":  # e.g. only dropout: ONNX graphs cannot pass their input through
        out = b.op("Identity", [out])
    rename = {out: "output"}  # the graph's result gets its public name, readers follow
    nodes = [helper.make_node(op, [rename.get(i, i) for i in ins],
                              [rename.get(o, o) for o in outs], name=outs[0], **attrs)
             for op, ins, outs, attrs in b.nodes]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(model.dtype))
    graph = helper.make_graph(
        nodes, "fastbp",
        [helper.make_tensor_value_info("input", elem, ["batch", int(model.input_dim)])],
        [helper.make_tensor_value_info("output", elem, ["batch", int(model.output_dim)])],
        initializer=[numpy_helper.from_array(a, n) for n, a in b.constants.items()])
    ops = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=ops, producer_name="fastbp",
                              ir_version=helper.find_min_ir_version_for(ops))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Any, path: Any, opset: Optional[int] = None) -> None:
    """Write ``model``'s inference graph to ``path`` as an ONNX file (atomically).

    Parameters
    ----------
    model : fastbp.Sequential
    path : str or os.PathLike
    opset : int, optional
        See :func:`to_model_proto`.
    """
    proto = to_model_proto(model, opset)
    atomic_write(path, proto.SerializeToString())
