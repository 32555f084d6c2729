"""Smoke test of the benchmark suite (bench/): every part runs on tiny sizes and writes a
well-formed JSON and Markdown report. No timing is asserted; torch and jax parts are skipped
when those are not installed."""
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if not (BENCH / "run.py").exists():  # tests run from an sdist or a copy without bench/
    pytest.skip("bench/ not found next to tests/", allow_module_level=True)
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

_spec = importlib.util.spec_from_file_location("fastbp_bench_run", BENCH / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)
from fastbp_bench import frameworks, harness, report  # noqa: E402
from fastbp_bench.gemm import gemm_cases  # noqa: E402

TINY_CLS = frameworks.Config("tinycls", (5, 7, 3), "relu", "identity", 4,
                             "softmax_cross_entropy", fit_steps=3)
TINY_REG = frameworks.Config("xor", (2, 4, 1), "sigmoid", "sigmoid", 4, "mse", fit_steps=2)
FAST = harness.Budget(0.0, min_repeats=2, max_repeats=2, min_sample=0.0, warmup=1)
BUDGETS = dict(gemm=FAST, step=FAST, fit=FAST)


def _options(frameworks_, parts=bench_run.PARTS, isolate=False, configs=(TINY_REG, TINY_CLS)):
    return bench_run.Options(quick=True, threads=[1], configs=list(configs),
                             frameworks=frameworks_, parts=parts, dtypes=["f32", "f64"],
                             squares=[8], isolate=isolate, budgets=BUDGETS, verbose=False,
                             memory_frameworks=frameworks_,
                             memory_configs=[c.name for c in configs])


def _check_time(t):
    assert t["repeats"] == len(t["samples"]) >= 2
    assert t["min"] <= t["q1"] <= t["median"] <= t["q3"] <= t["max"]
    assert t["median"] > 0 and math.isfinite(t["median"])


def _check_written(res, tmp_path, name="smoke"):
    paths = bench_run.write_results(res, str(tmp_path), name)
    with open(paths["json"]) as f:
        back = json.load(f)
    assert back["meta"]["options"]["threads"] == [1]
    assert back["meta"]["machine"]["logical_cpus"] >= 1
    assert "numpy" in back["meta"]["versions"]
    md = Path(paths["markdown"]).read_text()
    assert md.startswith(f"# fastbp benchmark — {name}")
    # every table row has the same number of cells as its header
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            ncol = lines[i - 1].count("|")
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == ncol, (lines[i - 1], lines[j])
                j += 1
    return back, md


def test_measure_statistics():
    calls = []
    t = harness.measure(lambda: calls.append(1), harness.Budget(0.0, 3, 3, 1e-4, 2))
    _check_time(t)
    assert t["repeats"] == 3 and t["inner"] >= 1
    assert len(calls) >= 2 + 3 * t["inner"]


def test_gemm_cases_cover_three_gemms_per_layer():
    cs = gemm_cases([frameworks.CONFIGS["mnist"]], squares=[256])
    assert cs[0]["kind"] == "square"
    kinds = [(c["kind"], c["M"], c["K"], c["N"]) for c in cs[1:]]
    assert ("fwd", 128, 784, 256) in kinds
    assert ("dx", 128, 256, 784) in kinds
    assert ("dW", 784, 128, 256) in kinds
    assert len(cs) == 1 + 3 * 3


def test_fastbp_suite_in_process(tmp_path):
    res = bench_run.run_benchmark(_options(["native", "reference"]))
    assert res["errors"] == []
    assert {r["dtype"] for r in res["gemm"]} == {"f32", "f64"}
    for g in res["gemm"]:
        assert g["max_rel_err"] < 1e-4
        _check_time(g["fastbp"])
        _check_time(g["numpy"])
        assert g["ratio"] > 0
    assert {(r["framework"], r["config"]) for r in res["step"]} == {
        (f, c) for f in ("native", "reference") for c in ("xor", "tinycls")}
    for r in res["step"]:
        _check_time(r["time"])
        assert math.isfinite(r["loss_last"])
    for r in res["fit"]:
        _check_time(r["time"])
        assert r["steps_per_s"] > 0 and r["n"] == r["fit_steps"] * r["batch"]
    assert len(res["memory"]) == 4
    assert all(r["peak_kib"] > 0 for r in res["memory"])
    names = [t["target"] for t in res["targets"]]
    assert any("GEMM f32 MLP shapes" in n for n in names)
    assert any(n == "fit xor: time per step" for n in names)
    back, md = _check_written(res, tmp_path)
    assert back["step"][0]["time"]["samples"]
    for section in ("## Targets", "## GEMM", "## Adam train_step", "## Inside fit",
                    "## Peak memory", "## Measurement conditions"):
        assert section in md
    assert "| xor 2-4-1 b4 | 1 |" in md


def test_render_from_json_with_min(tmp_path):
    res = bench_run.run_benchmark(_options(["native", "reference"], parts=["gemm", "step", "fit"],
                                           configs=[TINY_REG]))
    paths = bench_run.write_results(res, str(tmp_path), "r")
    assert bench_run.main(["--render", paths["json"], "--stat", "min"]) == 0
    md = (tmp_path / "r-min.md").read_text()
    assert "**min**" in md and "## Targets" in md
    # min-based ratios are what the table shows
    g = res["gemm"][0]
    want = g["numpy"]["min"] / g["fastbp"]["min"]
    assert f"{want:.2f} |" in md


def test_isolated_children(tmp_path):
    """The real path: one fresh, pinned process per measurement."""
    res = bench_run.run_benchmark(_options(["native"], parts=["gemm", "step", "memory"],
                                           isolate=True, configs=[TINY_CLS]))
    assert res["errors"] == [], res["errors"]
    assert res["gemm"] and res["step"] and res["memory"]
    gem = res["gemm"][0]
    assert gem["threads_in_use"]["fastbp"] == 1
    assert all(c.get("affinity") for c in res["children"]) or not hasattr(os, "sched_setaffinity")
    _check_written(res, tmp_path, "iso")


@pytest.mark.parametrize("fw", ["torch", "jax"])
def test_other_frameworks(fw, tmp_path):
    if importlib.util.find_spec(fw) is None:
        pytest.skip(f"{fw} not installed")
    # jax compiles per config and part: one config keeps the test short
    configs = [TINY_REG, TINY_CLS] if fw == "torch" else [TINY_REG]
    res = bench_run.run_benchmark(_options(["native", fw], parts=["step", "fit"],
                                           configs=configs))
    assert res["errors"] == [], res["errors"]
    got = {(r["framework"], r["config"]) for r in res["step"]}
    assert got == {(f, c.name) for f in ("native", fw) for c in configs}
    for r in res["step"] + res["fit"]:
        _check_time(r["time"])
    # a speed-up over the other framework is reported
    t = [x for x in res["targets"] if x["target"].startswith("Adam train_step xor")]
    assert t and t[0]["measured"] is not None and t[0]["measured"] > 0
    _, md = _check_written(res, tmp_path, fw)
    assert f"({fw})" in md


def test_missing_framework_is_a_note(monkeypatch):
    monkeypatch.setattr(bench_run, "available", lambda f: f != "jax")
    res = bench_run.run_benchmark(_options(["native", "jax"], parts=["step"],
                                           configs=[TINY_REG]))
    assert any("jax: not installed" in n for n in res["notes"])
    assert {r["framework"] for r in res["step"]} == {"native"}
    assert "not installed" in report.render_markdown(res, "x")


def test_bad_options_raise():
    with pytest.raises(ValueError, match="frameworks"):
        bench_run.run_benchmark(_options(["tensorflow"]))
    with pytest.raises(ValueError, match="parts"):
        bench_run.run_benchmark(_options(["native"], parts=["gemm", "bogus"]))
    with pytest.raises(SystemExit):
        bench_run.main(["--configs", "nope"])


def test_penalty_bench_runs(tmp_path):
    """bench/bench_penalty.py --quick: both epochs of its first case at one thread, written as
    JSON (no timing asserted)."""
    spec = importlib.util.spec_from_file_location("bench_penalty", BENCH / "bench_penalty.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "pen.json"
    assert mod.main(["--quick", "--threads", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["case"], r["threads"]) for r in rows] == [("digits b32", 1)]
    assert rows[0]["ratio"] > 0 and len(rows[0]["all_s"]["penalty"]) == 2


def test_team_policy_bench_runs(tmp_path):
    """bench/bench_team_policy.py: the in-process probe A/B for a second, written as JSON (no
    timing asserted): both networks trained in the same number of blocks."""
    spec = importlib.util.spec_from_file_location("bench_team_policy",
                                                  BENCH / "bench_team_policy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "policy.json"
    assert mod.main(["--parts", "probe", "--seconds", "1", "--json", str(out)]) == 0
    probe = json.loads(out.read_text())["probe"]
    assert len(probe["block_median_s"]["probe"]) == len(probe["block_median_s"]["no-probe"]) >= 1


def test_ab_bench_runs(tmp_path):
    """bench/bench_ab.py: two worker processes (here the same build) take turns; a JSON with
    both builds' block times and the per-block ratios (no timing asserted)."""
    spec = importlib.util.spec_from_file_location("bench_ab", BENCH / "bench_ab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import fastbp

    pkg = str(Path(fastbp.__file__).resolve().parents[1])
    out = tmp_path / "ab.json"
    assert mod.main(["--a", pkg, "--b", pkg, "--config", "xor", "--threads", "1",
                     "--steps", "5", "--blocks", "3", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert len(r["a"]["step_s"]) == len(r["b"]["step_s"]) == 3
    assert len(r["ratio_a_over_b"]["all"]) == 3 and r["ratio_a_over_b"]["median"] > 0
