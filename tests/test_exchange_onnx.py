"""ONNX export: the exported graph run by onnxruntime equals predict (float64 to float64
rounding except gelu's float32 erf, float32 to float32 rounding), for every layer kind and
activation, with a dynamic batch dimension."""
import numpy as np
import pytest
from exchange_models import ACTS, data, zoo

import fastbp as fb

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": X})[0]


def tolerance(dtype, act):
    if dtype == "float32" or act == "gelu":  # float64 gelu: onnxruntime's erf is float32
        return 1e-5
    return 1e-11


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
def test_every_activation_and_layer(tmp_path, act, dtype):
    model = zoo(act, dtype)
    path = tmp_path / "m.onnx"
    model.to_onnx(path)
    for n in (1, 7, 33):  # dynamic batch
        X, _ = data(dtype, n=n, seed=n)
        out = run(path, X)
        assert out.dtype == np.dtype(dtype) and out.shape == (n, 3)
        ref = model.predict(X)
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(out, ref, rtol=0, atol=tolerance(dtype, act) * scale)


def test_float64_is_exact_to_float64_rounding(tmp_path):
    """Not just within float32 rounding: the float64 graph agrees far below float32 eps."""
    model = zoo("tanh", "float64")
    model.to_onnx(tmp_path / "m.onnx")
    X, _ = data("float64")
    assert np.abs(run(tmp_path / "m.onnx", X) - model.predict(X)).max() < 1e-12


def test_softplus_threshold_and_extremes(tmp_path):
    model = fb.Sequential([fb.Activation("softplus"), fb.Dense(2)], input_dim=3, dtype="float64")
    model.to_onnx(tmp_path / "m.onnx")
    X = np.array([[-800.0, 19.5, 20.5], [1e3, -1.0, 0.0]])
    np.testing.assert_allclose(run(tmp_path / "m.onnx", X), model.predict(X), rtol=1e-13)


@pytest.mark.parametrize("opset", [13, 16, 17, 20])
def test_opsets(tmp_path, opset):
    model = zoo("gelu", "float32")
    model.to_onnx(tmp_path / "m.onnx", opset=opset)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert proto.opset_import[0].version == opset
    X, _ = data("float32")
    np.testing.assert_allclose(run(tmp_path / "m.onnx", X), model.predict(X), atol=1e-4)


def test_graph_interface(tmp_path):
    model = fb.MLP([4, 5, 2], dtype="float32")
    model.to_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input" and dims == ["batch", 4]
    assert out.name == "output"
    assert not any(n.op_type == "Dropout" for n in proto.graph.node)


def test_dropout_only_model(tmp_path):
    model = fb.Sequential([fb.Dropout(0.5)], input_dim=3)
    model.to_onnx(tmp_path / "m.onnx")
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(tmp_path / "m.onnx", X), X)


def test_reference_backend_exports_too(tmp_path):
    model = zoo("silu", "float64", backend="reference")
    model.to_onnx(tmp_path / "m.onnx")
    X, _ = data("float64")
    np.testing.assert_allclose(run(tmp_path / "m.onnx", X), model.predict(X), atol=1e-11)


@pytest.mark.parametrize("opset", [12, 10**6, 17.0, True, "17"])
def test_bad_opset(tmp_path, opset):
    with pytest.raises(ValueError, match="opset"):
        fb.MLP([2, 2]).to_onnx(tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_writes_only_the_target(tmp_path):
    fb.MLP([3, 4, 2]).to_onnx(tmp_path / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    with pytest.raises(OSError):
        fb.MLP([3, 4, 2]).to_onnx(tmp_path / "missing_dir" / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
