"""skl2onnx converts Pipelines holding fastbp.sklearn estimators; onnxruntime then gives the
pipeline's labels exactly and its probabilities / outputs to float32 rounding (float64 with
DoubleTensorType input)."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastbp.sklearn as fsk  # noqa: E402
from fastbp.io import register_skl2onnx  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 6)).astype(np.float32) * 4 + 1


def fit(est, y):
    pipe = make_pipeline(StandardScaler(), est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe.fit(X, y)


def run(onx, Xin):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: Xin})


@pytest.mark.parametrize("y", [RNG.integers(0, 4, 80),
                               np.array(["no", "yes"])[RNG.integers(0, 2, 80)]],
                         ids=["multiclass-int", "binary-str"])
@pytest.mark.parametrize("act", ["relu", "gelu", "softplus"])
def test_classifier_pipeline(y, act):
    pipe = fit(fsk.MLPClassifier(hidden_layer_sizes=(16, 8), activation=act, max_iter=20,
                                 random_state=0), y)
    onx = skl2onnx.to_onnx(pipe, X[:1], options={fsk.MLPClassifier: {"zipmap": False}})
    labels, proba = run(onx, X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)


def test_classifier_zipmap_default():
    pipe = fit(fsk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0),
               RNG.integers(0, 3, 80))
    labels, proba = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    expected = pipe.predict_proba(X)
    assert [sorted(d) for d in proba[:2]] == [[0, 1, 2]] * 2
    np.testing.assert_allclose([[d[k] for k in range(3)] for d in proba], expected, atol=1e-5)


@pytest.mark.parametrize("n_out", [1, 3])
def test_regressor_pipeline(n_out):
    y = X[:, :n_out] * 2 - 1
    pipe = fit(fsk.MLPRegressor(hidden_layer_sizes=(10,), activation="tanh", max_iter=20,
                                random_state=0), y.ravel() if n_out == 1 else y)
    (out,) = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert out.shape == (80, n_out)
    np.testing.assert_allclose(out.reshape(pipe.predict(X).shape), pipe.predict(X),
                               rtol=1e-5, atol=1e-5)


def test_float64_input_gives_float64_precision():
    X64 = X.astype(np.float64)
    est = fsk.MLPRegressor(hidden_layer_sizes=(10,), activation="elu", max_iter=10,
                           random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X64, X64[:, 0])
    (out,) = run(skl2onnx.to_onnx(est, X64[:1]), X64)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.ravel(), est.predict(X64), rtol=1e-12, atol=1e-12)


def test_multilabel_is_refused_clearly():
    Y = (RNG.random((80, 3)) > 0.5).astype(int)
    est = fsk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y)
    with pytest.raises(NotImplementedError, match="multilabel"):
        skl2onnx.to_onnx(est, X[:1], options={fsk.MLPClassifier: {"zipmap": False}})


def test_registered_when_skl2onnx_is_imported_after_fastbp_sklearn():
    code = "\n".join([
        "import sys, warnings",
        "import numpy as np",
        "import fastbp.sklearn as fsk",
        "assert 'skl2onnx' not in sys.modules  # fastbp does not import it",
        "import skl2onnx",
        "X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)",
        "est = fsk.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2)",
        "warnings.simplefilter('ignore')",
        "est.fit(X, X[:, 0])",
        "skl2onnx.to_onnx(est, X[:1])",
        "print('converted')",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "converted" in proc.stdout


def test_explicit_registration_is_idempotent():
    register_skl2onnx()
    register_skl2onnx()
    est = fit(fsk.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0), X[:, 0])
    (out,) = run(skl2onnx.to_onnx(est, X[:1]), X)
    np.testing.assert_allclose(out.ravel(), est.predict(X), rtol=1e-5, atol=1e-5)


def test_float_class_labels():
    """Integral float labels (scikit-learn accepts no others) come out as int64."""
    pipe = fit(fsk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
               RNG.integers(0, 3, 80).astype(np.float64))
    opts = {fsk.MLPClassifier: {"zipmap": False}}
    labels, _ = run(skl2onnx.to_onnx(pipe, X[:1], options=opts), X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
