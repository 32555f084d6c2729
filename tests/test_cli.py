"""The command line: ``fastbp info``, ``fastbp profile``, ``--version`` and argument errors."""
import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.__main__ import main
from fastbp.profile import PHASES, profile_network

TINY = ["profile", "--sizes", "8,5,3", "--batch", "4", "--repeats", "1", "--threads", "1"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "fastbp", *args], capture_output=True,
                          text=True, timeout=120)


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for key in ("version", "isa", "supported_isas", "num_threads", "openmp", "cpu", "python",
                "numpy", "platform"):
        assert key in out
    assert fb.__version__ in out and fb.get_isa() in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == fb.__version__
    assert info["isa"] == fb.get_isa() and info["isa"] in info["supported_isas"]
    assert info["num_threads"] == fb.get_num_threads()
    assert isinstance(info["openmp_enabled"], bool) and info["openmp"]
    assert info["numpy"] == np.__version__
    assert info["cpu_count"] >= 1


def test_profile_json(capsys):
    assert main([*TINY, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["config"]["sizes"] == [8, 5, 3] and res["config"]["threads"] == 1
    assert [(r["in"], r["out"]) for r in res["layers"]] == [(8, 5), (5, 3)]
    assert [r["activation"] for r in res["layers"]] == ["relu", "identity"]
    assert [r["loss"] for r in res["layers"]] == ["mse", "softmax_cross_entropy"]
    for r in res["layers"]:
        for b in ("native", "reference"):
            assert all(r["times"][b][ph] >= 0 for ph in PHASES)
            assert r["times"][b]["train_step"] > 0
        # float32, from the same initial parameters: the backends agree to rounding
        assert 0 <= r["max_abs_diff"]["output"] < 1e-5
        assert 0 <= r["max_abs_diff"]["gradients"] < 1e-5
        assert 0 <= r["max_abs_diff"]["parameters_after_step"] < 1e-5
        assert r["flops"]["forward"] == 2 * 4 * r["in"] * r["out"]
    # the second layer's backward counts dX as well as dW
    assert res["layers"][1]["flops"]["backward"] == 2 * res["layers"][1]["flops"]["forward"]
    assert set(res["network"]["step"]) == {"native", "reference"}
    assert res["network"]["speedup"]["reference"] > 0
    assert "loss_and_gradients" in res["method"]
    assert fb.get_num_threads() >= 1  # restored


def test_profile_table_has_phases_and_method_footer(capsys):
    assert main([*TINY, "--dtype", "float64", "--activation", "tanh", "--optimizer", "sgd",
                 "--loss", "mse"]) == 0
    out = capsys.readouterr().out
    for word in ("forward", "backward", "update", "GFLOP/s", "speed-up", "max|native-ref|",
                 "whole network", "method:", "8->5 tanh"):
        assert word in out, word


def test_profile_native_only_and_unknown_compare():
    res = profile_network([6, 4], batch=3, repeats=1, reference=False, compare=["nosuch"],
                          loss="binary_cross_entropy")
    assert list(res["layers"][0]["times"]) == ["native"]
    assert "speedup" not in res["layers"][0] and "max_abs_diff" not in res["layers"][0]
    assert any("nosuch" in n for n in res["network"]["notes"])


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_profile_compare(framework, capsys):
    assert main([*TINY, "--json", "--compare", framework]) == 0
    res = json.loads(capsys.readouterr().out)
    if importlib.util.find_spec(framework) is None:
        assert any("not installed" in n for n in res["network"]["notes"])
    else:
        assert res["network"]["step"][framework] > 0
        assert res["network"]["speedup"][framework] > 0


def test_profile_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "profile.png"
    assert main([*TINY, "--plot", str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_version():
    r = _run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"fastbp {fb.__version__}"


@pytest.mark.parametrize("sizes, message", [
    ("784,abc,10", "comma-separated positive integers"),
    ("784", "at least an input and an output"),
    ("784,0,10", ">= 1"),
    ("", "comma-separated"),
])
def test_bad_sizes_exit_2_with_a_clear_message(sizes, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["profile", "--sizes", sizes])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--sizes" in err and message in err


def test_bad_arguments_exit_2_from_the_shell():
    r = _run("profile", "--sizes", "784,-3,10")
    assert r.returncode == 2 and "--sizes" in r.stderr and ">= 1" in r.stderr
    r = _run("profile", "--activation", "swish")
    assert r.returncode == 2 and "--activation" in r.stderr
    r = _run("profile", "--batch", "0")
    assert r.returncode == 2 and "--batch" in r.stderr


def test_console_script_if_installed():
    exe = shutil.which("fastbp")
    if exe is None:
        pytest.skip("the fastbp console script is not on PATH")
    r = subprocess.run([exe, "info", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["version"] == fb.__version__


def test_profile_network_validates_its_arguments():
    with pytest.raises(ValueError, match="sizes"):
        profile_network([5])
    with pytest.raises(ValueError, match="batch"):
        profile_network([5, 2], batch=0)
    with pytest.raises(ValueError, match="optimizer"):
        profile_network([5, 2], optimizer="lion")
