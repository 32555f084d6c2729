"""Every script in examples/ runs (in its fast mode) and reaches its stated result."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name, *args, timeout=120):
    env = dict(os.environ, FASTBP_EXAMPLES_FAST="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--fast", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_all_examples_are_tested():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    # distributed.py runs under mpiexec in tests/test_distributed.py
    assert scripts == ["digits.py", "distributed.py", "regression.py", "serve_onnx.py",
                       "vanishing_gradients.py",
                       "xor.py"]


def test_xor():
    out = run("xor.py")
    assert "step  1500  loss" in out
    err = float(out.split("max |output - target| = ")[1].split()[0])
    assert err < 0.2


def test_digits(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("digits.py", "--out", str(tmp_path), "--plot", str(tmp_path / "d.png"))
    assert "resume check: 2 epochs straight == 1 + save/load + 1: True" in out
    acc = float(out.split("test accuracy ")[1].split()[0])
    assert acc > 0.85
    assert (tmp_path / "digits-best.npz").exists() and (tmp_path / "d.png").stat().st_size > 0


def test_regression():
    out = run("regression.py")
    assert "test RMSE" in out and "x better" in out


def test_vanishing_gradients():
    out = run("vanishing_gradients.py")
    line = [ln for ln in out.splitlines() if ln.startswith("first-layer / last-layer")][0]
    sigmoid = float(line.split("sigmoid ")[1].split()[0])
    relu = float(line.split("relu + He ")[1].split()[0])
    assert sigmoid < 1e-4 and 0.2 < relu < 5


def test_serve_onnx(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = run("serve_onnx.py", "--out", str(tmp_path))
    assert "by onnxruntime without fastbp" in out
    assert "labels equal to fastbp's predict: True" in out
    assert (tmp_path / "digits.onnx").stat().st_size > 0
