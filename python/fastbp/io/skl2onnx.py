"""skl2onnx converters for ``fastbp.sklearn.MLPClassifier`` and ``MLPRegressor``.

With them registered, ``skl2onnx.to_onnx`` converts a scikit-learn ``Pipeline`` holding a
fastbp estimator. The estimator's network is exported as in :mod:`fastbp.io.onnx` (every
layer and activation), in the dtype of the converter's input (float32 for skl2onnx's usual
``FloatTensorType``, float64 for ``DoubleTensorType``); then

* classifier (binary and multiclass): ``label`` (int64 or string, as ``classes_``) is
  ``classes_[argmax(logits)]`` (binary: ``classes_[logit > 0]``), as ``predict``;
  ``probabilities`` is the softmax of the logits (binary: ``[1 - sigmoid, sigmoid]``), as
  ``predict_proba``. skl2onnx's ``zipmap`` option applies (default: a ZipMap of the
  probabilities; ``options={"zipmap": False}`` gives the plain tensor).
* regressor: ``variable``, shaped (n, n_outputs).

Registration: importing :mod:`fastbp.sklearn` registers the converters if skl2onnx is
already imported, and otherwise as soon as skl2onnx is imported (a one-shot import hook;
fastbp never imports skl2onnx itself). :func:`register` does it explicitly. Multilabel
classifiers are not supported by the converter (export ``est.fastbp_model_.to_onnx(path)``
and threshold the logits at 0).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from ._tree import layer_tree, missing_extra

__all__ = ["register", "install_import_hook"]

_REGISTERED = [False]


def _types() -> Any:
    try:
        from skl2onnx.common import data_types
    except ImportError as exc:
        raise missing_extra("skl2onnx", "skl2onnx", "the skl2onnx converters", exc) from exc
    return data_types


def _float_type(operator: Any) -> Any:
    dt = _types()
    inp = operator.inputs[0].type
    return dt.DoubleTensorType if isinstance(inp, dt.DoubleTensorType) else dt.FloatTensorType


def _shape_classifier(operator: Any) -> None:
    dt = _types()
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    classes = np.asarray(est.classes_)
    label = dt.StringTensorType if classes.dtype.kind in "OUS" else dt.Int64TensorType
    operator.outputs[0].type = label([n])
    operator.outputs[1].type = _float_type(operator)([n, len(classes)])


def _shape_regressor(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([n, int(operator.raw_operator.n_outputs_)])


def _network(scope: Any, operator: Any, container: Any) -> tuple:
    """Emit the cast input and the estimator's network; returns (builder, logits name)."""
    from onnx import TensorProto

    from .onnx import GraphBuilder, emit_layers

    est = operator.raw_operator
    double = _float_type(operator) is _types().DoubleTensorType
    b = GraphBuilder(np.float64 if double else np.float32, container.target_opset,
                     prefix="fastbp_", namer=scope.get_unique_variable_name)
    x = b.op("Cast", [operator.inputs[0].full_name],
             to=TensorProto.DOUBLE if double else TensorProto.FLOAT)
    logits = emit_layers(b, layer_tree(est.fastbp_model_), x)
    return b, logits


def _flush(b: Any, scope: Any, container: Any) -> None:
    from onnx import numpy_helper

    for name, arr in b.constants.items():
        container.add_initializer(name, None, arr.shape, numpy_helper.from_array(arr, name))
    for op, ins, outs, attrs in b.nodes:
        container.add_node(op, ins, outs, name=scope.get_unique_operator_name(op), **attrs)


def _labels(b: Any, scope: Any, container: Any, classes: np.ndarray, index: str,
            out: str) -> None:
    from onnx import TensorProto

    flat = b.op("Reshape", [index, b.const("flat", [-1], np.int64)])
    if classes.dtype.kind in "OUS":
        name = scope.get_unique_variable_name("fastbp_classes")
        container.add_initializer(name, TensorProto.STRING, [len(classes)],
                                  [str(c).encode("utf-8") for c in classes])
        b.op("Gather", [name, flat], out=out, axis=0)
    else:
        b.op("Gather", [b.const("classes", classes.astype(np.int64), np.int64), flat], out=out,
             axis=0)


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    est = operator.raw_operator
    if getattr(est, "_kind", None) == "multilabel" or (
            est.out_activation_ == "logistic" and est.n_outputs_ > 1):
        raise NotImplementedError("the skl2onnx converter does not support multilabel fastbp "
                                  "classifiers; export est.fastbp_model_.to_onnx(path)")
    classes = np.asarray(est.classes_)  # scikit-learn's float class labels are integral
    b, logits = _network(scope, operator, container)
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    if len(classes) == 2:
        p = b.op("Sigmoid", [logits])
        b.op("Concat", [b.op("Sub", [b.const("one", 1.0), p]), p], out=proba_out, axis=1)
        index = b.op("Cast", [b.op("Greater", [logits, b.const("zero", 0.0)])],
                     to=TensorProto.INT64)
    else:
        b.op("Softmax", [logits], out=proba_out, axis=1)
        index = b.op("ArgMax", [logits], axis=1, keepdims=1)
    _labels(b, scope, container, classes, index, label_out)
    _flush(b, scope, container)


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    b, logits = _network(scope, operator, container)
    b.op("Identity", [logits], out=operator.outputs[0].full_name)
    _flush(b, scope, container)


def register() -> None:
    """Register the converters of ``fastbp.sklearn.MLPClassifier`` and ``MLPRegressor``
    with skl2onnx (idempotent).

    Raises
    ------
    ImportError
        If skl2onnx is not installed.
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as exc:
        raise missing_extra("skl2onnx", "skl2onnx", "the skl2onnx converters", exc) from exc
    from .. import sklearn as fsk

    update_registered_converter(fsk.MLPClassifier, "FastbpMLPClassifier", _shape_classifier,
                                _convert_classifier,
                                options={"zipmap": [True, False, "columns"], "nocl": [False]})
    update_registered_converter(fsk.MLPRegressor, "FastbpMLPRegressor", _shape_regressor,
                                _convert_regressor)
    _REGISTERED[0] = True


def _register_quietly() -> None:
    try:
        register()
    except Exception as exc:  # an incompatible skl2onnx must not break importing fastbp
        warnings.warn(f"fastbp could not register its skl2onnx converters: "
                      f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)


class _Loader(importlib.abc.Loader):
    """Runs skl2onnx's own loader, then registers fastbp's converters."""

    def __init__(self, inner: Any):
        self.inner = inner

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        _register_quietly()


class _Hook(importlib.abc.MetaPathFinder):
    """One-shot finder: wraps the loader of the ``skl2onnx`` package, then removes itself."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        if fullname != "skl2onnx":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install_import_hook() -> None:
    """Register the converters now if skl2onnx is imported, else when it is imported."""
    if _REGISTERED[0]:
        return
    if "skl2onnx" in sys.modules:
        _register_quietly()
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
