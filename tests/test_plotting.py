"""plot_history: panels, log scales, PNG output, and a clear error without matplotlib."""
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.datasets import load_digits


@pytest.fixture(scope="module")
def history():
    X, y = load_digits("float32")
    m = fb.Sequential([fb.Dense(16, "tanh"), fb.BatchNorm(), fb.Dense(10)], input_dim=64,
                      seed=0)
    return m.fit(X[:300], y[:300], loss="softmax_cross_entropy", optimizer=fb.optim.Adam(1e-2),
                 epochs=4, validation_split=0.2, metrics=["accuracy"],
                 schedule=fb.schedules.StepLR(2, 0.5), progress=False)


def test_plot_history_panels_and_png(history, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "h.png"
    fig = fb.plot_history(history, path, title="t")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("Loss") and "Accuracy" in titles
    assert any(t.startswith("Gradient") for t in titles)
    assert any(t.startswith("Learning") for t in titles)
    gax = axes[[t.startswith("Gradient") for t in titles].index(True)]
    assert gax.get_yscale() == "log"
    # one line per layer with parameters: dense1, batchnorm1, dense2
    assert [ln.get_label() for ln in gax.get_lines()] == ["dense1", "batchnorm1", "dense2"]
    # per-layer norm = sqrt of the sum of its parameters' squared norms
    g = np.asarray(history["grad_norm"])
    np.testing.assert_allclose(gax.get_lines()[0].get_ydata(), np.hypot(g[:, 0], g[:, 1]))
    lax = axes[0]
    labels = [ln.get_label() for ln in lax.get_lines()]
    assert labels[:2] == ["loss (train)", "val_loss"]
    np.testing.assert_array_equal(lax.get_lines()[1].get_ydata(), history["val_loss"])


def test_plot_history_minimal_dict(tmp_path):
    pytest.importorskip("matplotlib")
    fig = fb.plot_history({"loss": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.1]})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["Loss (constant lr 0.1)"]
    with pytest.raises(ValueError, match="no epochs"):
        fb.plot_history({"loss": []})
    with pytest.raises(TypeError, match="History"):
        fb.plot_history([1, 2])


def test_plot_history_without_matplotlib(history, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        fb.plot_history(history)
