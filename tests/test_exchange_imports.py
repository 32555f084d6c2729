"""fastbp stays importable with NumPy alone: the exchange formats import their optional
dependency only when used, and a missing one raises an ImportError naming the extra."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb

OPTIONAL = ("torch", "onnx", "onnxruntime", "sklearn", "skl2onnx", "safetensors")


def test_import_fastbp_loads_no_optional_dependency():
    code = ("import sys, fastbp, fastbp.io, fastbp.io.safetensors\n"
            f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"fastbp\[onnx\]"):
        fb.MLP([2, 2]).to_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.delitem(sys.modules, "fastbp.io.torch", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"fastbp\[torch\]"):
        fb.MLP([2, 2]).to_torch()


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    with pytest.raises(ImportError, match=r"fastbp\[sklearn\]"):
        fb.from_sklearn(object())


def test_safetensors_needs_only_numpy(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    model = fb.MLP([3, 4, 2], seed=1)
    model.save(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(fb.load(tmp_path / "m.safetensors").parameters()[0],
                                  model.parameters()[0])
