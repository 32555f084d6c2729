"""Targets and the Markdown report of a benchmark run (from the results dict alone)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

__all__ = ["TARGETS", "evaluate_targets", "render_markdown", "fmt_time"]

# The performance goals the report checks (met / not met).
TARGETS = dict(
    gemm_square=dict(sizes=(1024, 2048), ratio=1.0, dtype="f32", peak_fraction=0.9),
    gemm_mlp=dict(max_batch=256, ratio=1.0, dtype="f32"),
    step={"xor": 10.0, "digits": 8.0, "mnist": 1.5, "wide": 1.3, "tanh": 5.0, "gelu": 3.0,
          "silu": 2.0, "online": 5.0},
    fit_xor_step_s=300e-9,
)

_XOR_GOAL = f"<= {TARGETS['fit_xor_step_s'] * 1e9:.0f} ns"

STATS = ("median", "min")
_STAT = "median"   # the statistic tables and targets use; set by render/evaluate


def _set_stat(stat: str) -> None:
    global _STAT
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    _STAT = stat


def _t(t: Dict[str, Any]) -> float:
    """Seconds per call of a timing record under the chosen statistic."""
    return t[_STAT]


def _ratio(g: Dict[str, Any]) -> float:
    return _t(g["numpy"]) / _t(g["fastbp"])


def _fit_step(r: Dict[str, Any]) -> float:
    return _t(r["time"]) / r["fit_steps"]


FW_NAMES = {"native": "fastbp native", "reference": "fastbp reference", "torch": "PyTorch eager",
            "jax": "JAX jit"}


def fmt_time(s: Optional[float]) -> str:
    """Seconds in a readable unit: ns, µs, ms or s, 3 significant digits."""
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "–"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= f or unit == "ns":
            v = s / f
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{s} s"


def _spread(t: Dict[str, Any]) -> str:
    med = t.get("median")
    if not med:
        return ""
    return f" ±{100.0 * t.get('iqr', 0.0) / med:.0f}%"


def _cell_time(t: Optional[Dict[str, Any]]) -> str:
    if not t:
        return "–"
    return fmt_time(_t(t)) + _spread(t)


def _status(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "not met")


def _index(rows: List[Dict[str, Any]], *keys: str) -> Dict[tuple, Dict[str, Any]]:
    return {tuple(r.get(k) for k in keys): r for r in rows}


def _best_other(step_idx: Dict[tuple, Dict[str, Any]], cfg: str, thr: int,
                field: str = "time") -> tuple:
    """(seconds, framework) of the faster of torch and jax, or (None, None)."""
    best = (None, None)
    for fw in ("torch", "jax"):
        r = step_idx.get((fw, thr, cfg))
        if not r or "skipped" in r:
            continue
        v = _t(r["time"]) if field == "time" else _fit_step(r)
        if best[0] is None or v < best[0]:
            best = (v, fw)
    return best


def evaluate_targets(res: Dict[str, Any], stat: str = "median") -> List[Dict[str, Any]]:
    """One record per (target, thread count): what was measured, the goal, met or not.

    ``stat``: "median" (default) or "min" of the repeats."""
    _set_stat(stat)
    out: List[Dict[str, Any]] = []
    threads = res.get("meta", {}).get("options", {}).get("threads", [])
    gemm = res.get("gemm", [])
    tg = TARGETS["gemm_square"]
    for thr in threads:
        for n in tg["sizes"]:
            r = next((g for g in gemm if g["kind"] == "square" and g["M"] == n
                      and g["dtype"] == tg["dtype"] and g["threads"] == thr), None)
            out.append(dict(target=f"GEMM f32 square n={n} vs numpy.matmul", threads=thr,
                            goal=f">= {tg['ratio']}x", measured=None if r is None else _ratio(r),
                            text="not measured" if r is None else f"{_ratio(r):.2f}x",
                            met=None if r is None else _ratio(r) >= tg["ratio"]))
            frac = None if r is None else peak_fraction(res, r["flop"] / _t(r["fastbp"]),
                                                        tg["dtype"], thr)
            if frac is not None:
                out.append(dict(target=f"GEMM f32 square n={n}: % of FMA peak", threads=thr,
                                goal=f">= {tg['peak_fraction']:.0%}", measured=frac,
                                text=f"{frac:.0%}", met=frac >= tg["peak_fraction"]))
    tm = TARGETS["gemm_mlp"]
    for thr in threads:
        rs = [g for g in gemm if g["kind"] != "square" and g["dtype"] == tm["dtype"]
              and g["threads"] == thr and (g.get("batch") or 0) <= tm["max_batch"]]
        if not rs:
            out.append(dict(target="GEMM f32 MLP shapes (batch <= 256) vs numpy.matmul",
                            threads=thr, goal=f">= {tm['ratio']}x every shape", measured=None,
                            text="not measured", met=None))
            continue
        ratios = [_ratio(g) for g in rs]
        worst = min(rs, key=_ratio)
        gmean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        n_ok = sum(x >= tm["ratio"] for x in ratios)
        out.append(dict(target="GEMM f32 MLP shapes (batch <= 256) vs numpy.matmul", threads=thr,
                        goal=f">= {tm['ratio']}x every shape", measured=min(ratios),
                        text=(f"{n_ok}/{len(ratios)} shapes; geomean {gmean:.2f}x; worst "
                              f"{_ratio(worst):.2f}x ({worst['case']} {worst['M']}x{worst['K']}"
                              f"x{worst['N']})"),
                        met=n_ok == len(ratios)))
    sidx = _index(res.get("step", []), "framework", "threads", "config")
    for cfg, goal in TARGETS["step"].items():
        if cfg not in res.get("meta", {}).get("configs", {}):
            continue
        for thr in threads:
            nat = sidx.get(("native", thr, cfg))
            other, who = _best_other(sidx, cfg, thr)
            if nat is None or other is None:
                out.append(dict(target=f"Adam train_step {cfg}: speed-up over best of torch/jax",
                                threads=thr, goal=f">= {goal}x", measured=None,
                                text="not measured (native or both torch and jax missing)",
                                met=None))
                continue
            sp = other / _t(nat["time"])
            text = f"{sp:.2f}x (vs {who} {fmt_time(other)})"
            bound = _peak_bound(res, nat, other, thr)
            if bound is not None:
                text += (f"; at most {bound:.1f}x at the FMA peak"
                         + (" (goal above the peak)" if bound < goal else ""))
            out.append(dict(target=f"Adam train_step {cfg}: speed-up over best of torch/jax",
                            threads=thr, goal=f">= {goal}x", measured=sp, text=text,
                            met=sp >= goal))
    fidx = _index(res.get("fit", []), "framework", "threads", "config")
    if "xor" in res.get("meta", {}).get("configs", {}):
        for thr in threads:
            r = fidx.get(("native", thr, "xor"))
            if r is None or "skipped" in r:
                out.append(dict(target="fit xor: time per step", threads=thr, goal=_XOR_GOAL,
                                measured=None, text="not measured", met=None))
                continue
            v = _fit_step(r)
            out.append(dict(target="fit xor: time per step", threads=thr, goal=_XOR_GOAL,
                            measured=v, text=fmt_time(v),
                            met=v <= TARGETS["fit_xor_step_s"]))
    return out


def _peak_bound(res: Dict[str, Any], nat: Dict[str, Any], other: float,
                threads: int) -> Optional[float]:
    """The largest speed-up over a peer time ``other`` that a step of this many FLOPs could
    reach if it ran at the measured FMA peak of ``threads`` cores (its arithmetic alone, with
    no memory traffic and no per-call cost): a goal above it cannot be met on this CPU."""
    flops = nat.get("flops_per_step")
    p = (res.get("meta", {}).get("fma_peak") or {}).get("f32")
    if not flops or not p:
        return None
    return other / (flops / (p * 1e9 * threads))


def peak_fraction(res: Dict[str, Any], flops_per_s: float, dtype: str,
                  threads: int) -> Optional[float]:
    """flops_per_s as a fraction of the measured per-core FMA peak times ``threads``."""
    p = (res.get("meta", {}).get("fma_peak") or {}).get(dtype)
    if not p:
        return None
    return flops_per_s / (p * 1e9 * threads)


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _gflops(g: Dict[str, Any], who: str) -> str:
    t = g[who]
    v = g["flop"] / _t(t) / 1e9
    return (f"{v:.1f}" if v >= 10 else f"{v:.3g}") + _spread(t)


def render_markdown(res: Dict[str, Any], name: str = "", stat: str = "median") -> str:
    """The report: run information, targets, GEMM, train_step, fit and memory tables.

    ``stat``: the statistic of the repeats the tables and targets use, "median" (default)
    or "min" (the better estimate of a call's own cost on a machine shared with other work).
    """
    _set_stat(stat)
    meta = res.get("meta", {})
    m = meta.get("machine", {})
    v = meta.get("versions", {})
    info = meta.get("fastbp_info", {})
    opts = meta.get("options", {})
    L: List[str] = []
    L.append(f"# fastbp benchmark{(' — ' + name) if name else ''}")
    L.append("")
    L.append(f"**CPU {m.get('cpu_model', '?')} · ISA {info.get('isa', '?')}** "
             f"({m.get('logical_cpus', '?')} logical CPUs)")
    L.append("")
    L.append(f"- run: {meta.get('started', '?')} → {meta.get('finished', '?')} "
             f"({meta.get('wall_s', 0):.0f} s)"
             f"{' — **quick smoke run**' if opts.get('quick') else ''}"
             f"; command: `{meta.get('command', '')}`")
    L.append(f"- machine: {m.get('cpu_model', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
             f"caches {', '.join(f'{k} {x}' for k, x in (m.get('caches') or {}).items())}, "
             f"{m.get('mem_total_gib', '?')} GiB, {m.get('system', '')}, "
             f"Python {m.get('python', '')}")
    loads = [c.get("foreign_load") for c in res.get("children", [])
             if c.get("foreign_load") is not None]
    L.append(f"- load average at start {_load(m.get('loadavg'))}, at end "
             f"{_load(meta.get('loadavg_end'))}"
             + (f"; other processes used {min(loads):.2f}–{max(loads):.2f} cores (median "
                f"{sorted(loads)[len(loads) // 2]:.2f}) while we measured (see Measurement "
                f"conditions)" if loads else ""))
    L.append(f"- fastbp {info.get('version', '?')}: isa {info.get('isa', '?')} (supported "
             f"{', '.join(info.get('supported_isas', []))}), OpenMP {info.get('openmp', '?')}")
    from .extra import render_activations, render_peak, render_sklearn

    L.extend(render_peak(meta))
    L.append("- versions: " + ", ".join(f"{k} {x}" for k, x in v.items() if x is not None)
             + ((" — not installed: " + ", ".join(k for k, x in v.items() if x is None))
                if any(x is None for x in v.values()) else ""))
    L.append(f"- every number is the **{stat}** over repeats of back-to-back calls, after "
             "warm-up; ±N% is the interquartile range as a percentage of the median. Each "
             "thread count "
             "and each framework runs in a fresh process pinned to that many CPUs, with "
             "OpenMP/OpenBLAS/MKL/XLA limited to it (the counts the libraries report are in "
             "the JSON).")
    L.append("")

    targets = evaluate_targets(res, stat) if res.get("meta") else (res.get("targets") or [])
    _set_stat(stat)
    if loads and sorted(loads)[len(loads) // 2] > 0.3:
        med_load = sorted(loads)[len(loads) // 2]
        L.append(f"> **Warning:** other processes used a median {med_load:.2f}"
                 f" cores of {m.get('logical_cpus', '?')} while this ran; timings (above all the "
                 f"multi-threaded ones) are disturbed. "
                 + ("Re-render with `--stat min` for the best-case cost, or re-run on a quiet "
                    "machine." if stat != "min" else "Shown: the min of the repeats."))
        L.append("")
    if targets:
        L.append("## Targets")
        L.append("")
        L.append("| target | threads | goal | measured | status |")
        L.append("|---|---:|---|---|---|")
        for t in targets:
            L.append(f"| {t['target']} | {t['threads']} | {t['goal']} | {t['text']} | "
                     f"{_status(t['met'])} |")
        n_met = sum(1 for t in targets if t["met"])
        n_eval = sum(1 for t in targets if t["met"] is not None)
        L.append("")
        L.append(f"{n_met} of {n_eval} evaluated targets met.")
        L.append("")

    gemm = res.get("gemm", [])
    if gemm:
        L.append("## GEMM: fastbp._core.gemm vs numpy.matmul (GFLOP/s)")
        L.append("")
        L.append("C = op(A)·op(B), C is M×N, inner dimension K. MLP shapes: forward `x·W`, "
                 "backward `dz·Wᵀ` (transb) and `xᵀ·dz` (transa) of each layer of each config. "
                 "ratio = numpy time / fastbp time (> 1: fastbp faster).")
        L.append("")
        thr_list = sorted({g["threads"] for g in gemm})
        head = "| case | M×K×N | dtype |"
        sep = "|---|---|---|"
        for thr in thr_list:
            head += f" fastbp t{thr} | numpy t{thr} | ratio t{thr} | % peak t{thr} |"
            sep += "---:|---:|---:|---:|"
        L.append(head)
        L.append(sep)
        gidx = _index(gemm, "case", "dtype", "threads")
        seen = []
        for g in gemm:
            key = (g["case"], g["dtype"])
            if key in seen:
                continue
            seen.append(key)
        seen.sort(key=lambda k: (k[1], 0 if k[0].startswith("square") else 1))
        for case, dt in seen:
            any_row = next(g for g in gemm if g["case"] == case and g["dtype"] == dt)
            row = f"| {case} | {any_row['M']}×{any_row['K']}×{any_row['N']} | {dt} |"
            for thr in thr_list:
                g = gidx.get((case, dt, thr))
                if g is None:
                    row += " – | – | – | – |"
                else:
                    frac = peak_fraction(res, g["flop"] / _t(g["fastbp"]), dt, thr)
                    row += (f" {_gflops(g, 'fastbp')} | {_gflops(g, 'numpy')} | "
                            f"{_ratio(g):.2f} | {_pct(frac)} |")
            L.append(row)
        L.append("")

    steps = res.get("step", [])
    if steps:
        L.append("## Adam train_step, float32 (time per step)")
        L.append("")
        L.append("fastbp native `model.train_step`, fastbp reference (NumPy backend), PyTorch "
                 "eager (`nn.Sequential` + `torch.optim.Adam`, zero_grad/backward/step, "
                 "`loss.item()`), JAX (`jit` of value_and_grad + Adam in jax.numpy, donated "
                 "buffers, `float(loss)`). speed-up = faster of torch/jax ÷ native.")
        L.append("")
        L.append("| config | threads | native | reference | torch | jax | native GFLOP/s | "
                 "% peak | speed-up | goal | status |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        sidx = _index(steps, "framework", "threads", "config")
        cfgs = list(meta.get("configs", {}))
        for cfg in cfgs:
            c = meta["configs"][cfg]
            for thr in opts.get("threads", []):
                cells = [_cell_time((sidx.get((fw, thr, cfg)) or {}).get("time"))
                         for fw in ("native", "reference", "torch", "jax")]
                nat = sidx.get(("native", thr, cfg))
                other, who = _best_other(sidx, cfg, thr)
                goal = TARGETS["step"].get(cfg)
                if nat is not None and other is not None:
                    sp = other / _t(nat["time"])
                    spc = f"{sp:.2f}x ({who})"
                    st = _status(sp >= goal) if goal else ""
                else:
                    spc, st = "–", _status(None)
                fps = nat["flops_per_step"] / _t(nat["time"]) if nat else None
                gf = f"{fps / 1e9:.1f}" if fps else "–"
                pk = _pct(peak_fraction(res, fps, "f32", thr)) if fps else "–"
                L.append(f"| {cfg} {c['label']} b{c['batch']} | {thr} | " + " | ".join(cells)
                         + f" | {gf} | {pk} | {spc} | {'>= %gx' % goal if goal else ''} | {st} |")
        L.append("")

    fits = res.get("fit", [])
    if fits:
        L.append("## Inside fit: one epoch of shuffled mini-batches (time per step, steps/s)")
        L.append("")
        L.append("fastbp `model.fit(epochs=1, progress=False, grad_norm=False)` (one native "
                 "call per epoch), PyTorch a "
                 "`randperm` + index + step loop, JAX one jitted `lax.scan` over the epoch "
                 f"(shuffled on device). Time per step = epoch {stat} ÷ steps.")
        L.append("")
        L.append("| config | threads | steps×batch | native | reference | torch | jax | "
                 "native steps/s | speed-up |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        fidx = _index(fits, "framework", "threads", "config")
        for cfg in meta.get("configs", {}):
            c = meta["configs"][cfg]
            for thr in opts.get("threads", []):
                cells = []
                for fw in ("native", "reference", "torch", "jax"):
                    r = fidx.get((fw, thr, cfg))
                    if r is None:
                        cells.append("–")
                    elif "skipped" in r:
                        cells.append("skipped")
                    else:
                        cells.append(fmt_time(_fit_step(r)) + _spread(r["time"]))
                nat = fidx.get(("native", thr, cfg))
                nat = None if (nat is None or "skipped" in nat) else nat
                other, who = _best_other(fidx, cfg, thr, field="step_median")
                sp = f"{other / _fit_step(nat):.2f}x ({who})" if (nat and other) else "–"
                sps = f"{1.0 / _fit_step(nat):,.0f}" if nat else "–"
                L.append(f"| {cfg} {c['label']} b{c['batch']} | {thr} | "
                         f"{c['fit_steps']}×{c['batch']} | " + " | ".join(cells)
                         + f" | {sps} | {sp} |")
        L.append("")

    L.extend(render_sklearn(res.get("sklearn", [])))
    L.extend(render_activations(res.get("activations", [])))

    mem = res.get("memory", [])
    if mem:
        L.append("## Peak memory (MiB): training rise / whole process")
        L.append("")
        L.append("A fresh process per cell: import the framework, then build the model and "
                 "data, run 3 train steps and one fit epoch. First number: rise of the peak "
                 "RSS (VmHWM) above the RSS after the import — model, optimizer state, "
                 "workspaces, data, JIT caches; second: the process's peak RSS, import "
                 "included.")
        L.append("")
        L.append("| config | " + " | ".join(FW_NAMES[f] for f in
                                               ("native", "reference", "torch", "jax")) + " |")
        L.append("|---|---:|---:|---:|---:|")
        midx = _index(mem, "framework", "config")
        for cfg in dict.fromkeys(r["config"] for r in mem):
            cells = []
            for fw in ("native", "reference", "torch", "jax"):
                r = midx.get((fw, cfg))
                cells.append("–" if r is None or r.get("peak_delta_kib") is None else
                             f"{_mib(r['peak_delta_kib'])} / {r['peak_kib'] / 1024:.0f}")
            L.append(f"| {cfg} | " + " | ".join(cells) + " |")
        thr = {r["threads"] for r in mem}
        L.append("")
        L.append(f"Measured at {', '.join(str(t) for t in sorted(thr))} thread(s); method: "
                 f"{', '.join(sorted({r['method'] for r in mem}))}.")
        L.append("")

    children = res.get("children", [])
    if children:
        L.append("## Measurement conditions")
        L.append("")
        L.append("One row per measuring process. other load: average number of cores used by "
                 "other processes on the machine meanwhile (from /proc/stat minus the "
                 "benchmark's own CPU time); above ~0.3 the timings are disturbed.")
        L.append("")
        L.append("| process | threads | CPUs pinned | thread pools reported | wall | other load |")
        L.append("|---|---:|---|---|---:|---:|")
        for c in children:
            what = c.get("kind", "?")
            if c.get("framework"):
                what += f" {c['framework']}"
            if c.get("config"):
                what += f" {c['config']}"
            tiu = c.get("threads_in_use") or {}
            tiu_s = ", ".join(f"{k}={v}" for k, v in tiu.items()
                              if k not in ("jax_devices", "isa", "fit_kwargs")
                              and v not in ("", None))
            fl = c.get("foreign_load")
            L.append(f"| {what} | {c.get('threads')} | {c.get('affinity', '')} | {tiu_s} | "
                     f"{c.get('child_wall_s', 0) or 0:.1f} s | "
                     f"{'–' if fl is None else f'{fl:.2f}'} |")
        L.append("")

    notes = list(res.get("notes", []))
    errors = res.get("errors", [])
    if notes or errors:
        L.append("## Notes")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
        for e in errors:
            t = e.get("task", {})
            L.append(f"- ERROR in {t.get('kind')} {t.get('framework', '')} "
                     f"threads={t.get('threads')}: {e.get('error')}")
        L.append("")
    return "\n".join(L)


def _mib(kib: float) -> str:
    v = kib / 1024
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _load(x: Any) -> str:
    if not x:
        return "?"
    return " / ".join(f"{v:.2f}" for v in x)
