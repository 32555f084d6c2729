"""Timing, thread pinning, memory and machine information for the fastbp benchmarks.

Nothing here imports fastbp, torch or jax at module level: a benchmark child process pins its
CPU affinity and thread environment *before* any numerical library is loaded.
"""
from __future__ import annotations

import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = [
    "Budget", "measure", "settle", "thread_env", "pin_current_process", "rss_kib", "reset_peak_rss",
    "peak_rss_kib", "machine_info", "versions", "run_child", "os_thread_count",
    "cpu_snapshot", "foreign_load", "wait_quiet",
]


class Budget:
    """How long to spend on one measurement.

    Parameters
    ----------
    seconds : float
        Target wall time for the timed repeats of one measurement (warm-up excluded).
    min_repeats, max_repeats : int
        Bounds on the number of timed samples; the median and quartiles are taken over them.
    min_sample : float
        A sample times enough back-to-back calls to last at least this long (seconds), so the
        timer's resolution and the loop's overhead do not dominate microsecond calls.
    warmup : int
        Untimed calls before timing (JIT compilation, first-step allocation, caches).
    """

    def __init__(self, seconds: float = 1.0, min_repeats: int = 5, max_repeats: int = 41,
                 min_sample: float = 5e-3, warmup: int = 3):
        self.seconds = float(seconds)
        self.min_repeats = int(min_repeats)
        self.max_repeats = int(max_repeats)
        self.min_sample = float(min_sample)
        self.warmup = int(warmup)

    def scaled(self, factor: float, min_repeats: Optional[int] = None) -> "Budget":
        return Budget(self.seconds * factor,
                      self.min_repeats if min_repeats is None else min_repeats,
                      self.max_repeats, self.min_sample, self.warmup)

    def as_dict(self) -> Dict[str, Any]:
        return dict(seconds=self.seconds, min_repeats=self.min_repeats,
                    max_repeats=self.max_repeats, min_sample=self.min_sample, warmup=self.warmup)


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted sequence."""
    if len(sorted_xs) == 1:
        return float(sorted_xs[0])
    pos = q * (len(sorted_xs) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_xs) - 1)
    return float(sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo))


def measure(fn: Callable[[], Any], budget: Budget) -> Dict[str, Any]:
    """Time ``fn()``: warm up, then take repeated samples of back-to-back calls.

    Returns seconds per call: ``median``, ``q1``, ``q3``, ``iqr``, ``min``, ``max`` over the
    samples, with ``repeats`` (samples), ``inner`` (calls per sample) and ``samples``.
    The garbage collector is off while timing, as in :mod:`timeit`.
    """
    for _ in range(max(1, budget.warmup)):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # estimate one call (after warm-up), growing the batch until it is measurable
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            dt = time.perf_counter() - t0
            if dt >= min(budget.min_sample, 1e-3) or n >= 1 << 20:
                break
            n *= 4
        one = max(dt / n, 1e-9)
        inner = max(1, int(math.ceil(budget.min_sample / one)))
        repeats = int(budget.seconds / (one * inner))
        repeats = max(budget.min_repeats, min(budget.max_repeats, repeats))
        samples: List[float] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter() - t0) / inner)
    finally:
        if gc_was_enabled:
            gc.enable()
    s = sorted(samples)
    q1, q3 = _quantile(s, 0.25), _quantile(s, 0.75)
    return dict(median=float(statistics.median(s)), q1=q1, q3=q3, iqr=q3 - q1, min=s[0],
                max=s[-1], repeats=repeats, inner=inner, samples=samples)


# ----------------------------------------------------------------------------- threads
def thread_env(threads: int, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for a child process that must use ``threads`` threads in every library.

    The variables are read when the libraries load, so they must be in the child's
    environment from its start (OpenBLAS, OpenMP, MKL); the child also pins its CPU
    affinity (see :func:`pin_current_process`), which is what XLA sizes its pool by.
    """
    env = dict(os.environ if base is None else base)
    n = str(int(threads))
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[k] = n
    if int(threads) == 1:
        flags = env.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONHASHSEED"] = "0"
    return env


# After a call, a BLAS library's worker threads keep spinning for a while (OpenBLAS: about
# 2^28 cycles, ~0.1 s) before they sleep. A multi-threaded measurement that starts in that
# window shares its cores with them: fastbp's 2-thread products of 256x256x512 took 4-16 ms a
# call for the first ~0.1 s after a numpy matmul, against 0.35-0.5 ms once the spinners slept
# (the Zen 4 VM). So one library's measurement must not start right after the other's.
SETTLE_S = 0.25


def settle(threads: int, seconds: float = SETTLE_S) -> None:
    """Wait until the worker threads of the library measured before have gone to sleep (only
    with more than one thread: single-threaded libraries leave no spinning workers)."""
    if int(threads) > 1:
        time.sleep(seconds)


def pin_current_process(threads: int) -> List[int]:
    """Restrict this process to ``threads`` CPUs (the first ones it may run on).

    Returns the CPU list in force. On systems without ``sched_setaffinity`` nothing changes.
    """
    if not hasattr(os, "sched_setaffinity"):
        return []
    allowed = sorted(os.sched_getaffinity(0))
    cpus = allowed[:max(1, int(threads))]
    os.sched_setaffinity(0, cpus)
    return sorted(os.sched_getaffinity(0))


def os_thread_count() -> Optional[int]:
    """Threads of this process (Linux ``/proc/self/status``), ``None`` elsewhere."""
    v = _proc_status_kib("Threads")
    return None if v is None else int(v)


# ----------------------------------------------------------------------------- memory
def _proc_status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib() -> Optional[int]:
    """Current resident set size in KiB (Linux), ``None`` if unknown."""
    return _proc_status_kib("VmRSS")


def peak_rss_kib() -> int:
    """Peak resident set size in KiB: ``VmHWM`` on Linux, else ``getrusage`` maxrss."""
    v = _proc_status_kib("VmHWM")
    if v is not None:
        return v
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(ru // 1024) if sys.platform == "darwin" else int(ru)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux: ``5`` into clear_refs).

    Returns True when the reset worked (VmHWM then equals VmRSS), False otherwise.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm, rss = _proc_status_kib("VmHWM"), _proc_status_kib("VmRSS")
    # other threads of the process (XLA, OpenMP) may allocate meanwhile: allow 1 MiB
    return hwm is not None and rss is not None and hwm <= rss + 1024


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_sizes() -> Dict[str, str]:
    out: Dict[str, str] = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for d in sorted(os.listdir(base)):
            p = os.path.join(base, d)
            try:
                level = open(os.path.join(p, "level")).read().strip()
                kind = open(os.path.join(p, "type")).read().strip()
                size = open(os.path.join(p, "size")).read().strip()
            except OSError:
                continue
            out[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = size
    except OSError:
        pass
    return out


def _mem_total_gib() -> Optional[float]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 2)
    except OSError:
        pass
    return None


def machine_info() -> Dict[str, Any]:
    """CPU model, core count, caches, memory, OS, Python and load average."""
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return dict(
        cpu_model=cpu_model(), logical_cpus=os.cpu_count(), affinity=affinity,
        caches=_cache_sizes(), mem_total_gib=_mem_total_gib(), machine=platform.machine(),
        system=f"{platform.system()} {platform.release()}", python=sys.version.split()[0],
        python_implementation=platform.python_implementation(), loadavg=load,
    )


def versions() -> Dict[str, Optional[str]]:
    """Versions of the libraries the benchmark may use (None when not installed).

    Uses package metadata, so torch and jax are not imported.
    """
    from importlib import metadata

    out: Dict[str, Optional[str]] = {}
    for name in ("fastbp", "numpy", "torch", "jax", "jaxlib", "optax", "threadpoolctl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------- load
def cpu_snapshot() -> Dict[str, float]:
    """Busy CPU seconds of the whole machine (``/proc/stat``), CPU seconds of this process
    and of its finished children, and the wall clock."""
    busy = float("nan")
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
        vals = [int(x) for x in parts[1:]]
        # user nice system idle iowait irq softirq steal (guest counted inside user)
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        busy = (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(busy=busy, self_cpu=me.ru_utime + me.ru_stime,
                children_cpu=ch.ru_utime + ch.ru_stime, wall=time.perf_counter())


def foreign_load(a: Dict[str, float], b: Dict[str, float]) -> Optional[float]:
    """Average number of cores used by *other* processes between two snapshots (machine busy
    time minus this process's and its children's CPU time, over the wall time)."""
    wall = b["wall"] - a["wall"]
    if wall <= 0 or math.isnan(a["busy"]) or math.isnan(b["busy"]):
        return None
    own = (b["self_cpu"] - a["self_cpu"]) + (b["children_cpu"] - a["children_cpu"])
    return max(0.0, (b["busy"] - a["busy"] - own) / wall)


def wait_quiet(max_wait: float, threshold: float = 0.3, window: float = 1.0) -> Dict[str, Any]:
    """Wait (at most ``max_wait`` s) until other processes use under ``threshold`` cores over
    a ``window``-second sample. Returns the wait and the last load seen."""
    t0 = time.perf_counter()
    load = None
    while True:
        a = cpu_snapshot()
        time.sleep(window)
        load = foreign_load(a, cpu_snapshot())
        if load is None or load < threshold or time.perf_counter() - t0 >= max_wait:
            break
    return dict(waited_s=time.perf_counter() - t0, load_before=load)


# ----------------------------------------------------------------------------- children
def run_child(script: str, task: Dict[str, Any], threads: int, out_path: str,
              timeout: float = 900.0) -> Dict[str, Any]:
    """Run ``python script --child TASK --child-out out_path`` with a ``threads``-thread
    environment; return the JSON the child wrote (or an ``{"error": ...}`` record)."""
    cmd = [sys.executable, script, "--child", json.dumps(task), "--child-out", out_path]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "task": task}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not os.path.exists(out_path):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        return {"error": f"child exited with {proc.returncode}", "stderr": "\n".join(tail),
                "task": task}
    with open(out_path) as f:
        res = json.load(f)
    os.remove(out_path)
    res["child_wall_s"] = wall
    return res
