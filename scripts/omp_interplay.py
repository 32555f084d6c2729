"""fastbp and PyTorch in one process: time fastbp train steps, torch ops, and the two
alternating, and list the OpenMP runtimes threadpoolctl finds (docs/PACKAGING.md).

    python scripts/omp_interplay.py                       # as installed
    OMP_WAIT_POLICY=passive python scripts/omp_interplay.py

alt/(fb+torch) near 1 means no interference; with two OpenMP runtimes (a repaired wheel next to
torch's bundled libgomp) whose idle workers spin, it was 7-9 on 2 cores.
Needs torch and threadpoolctl.
"""
import os
import time

import numpy as np
import threadpoolctl
import torch

import fastbp as fb


def per_call_us(fn, n=200):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 128)).astype(np.float32)
    y = rng.integers(0, 10, 256).astype(np.int64)
    model = fb.MLP([128, 256, 256, 10], seed=0)
    opt = fb.optim.SGD(lr=1e-3)
    A, B = torch.randn(256, 256), torch.randn(256, 256)

    def fb_step():
        model.train_step(X, y, "softmax_cross_entropy", opt)

    def torch_step():
        (A @ B).relu_().sum()

    for f in (fb_step, torch_step, fb_step, torch_step):
        f()
    best = {"fb": np.inf, "torch": np.inf, "alt": np.inf}
    for _ in range(3):
        best["fb"] = min(best["fb"], per_call_us(fb_step))
        best["torch"] = min(best["torch"], per_call_us(torch_step))
        best["alt"] = min(best["alt"], per_call_us(lambda: (fb_step(), torch_step())))
    ratio = best["alt"] / (best["fb"] + best["torch"])
    print("us per call:", {k: round(v, 1) for k, v in best.items()},
          f"alt/(fb+torch) = {ratio:.2f}")
    for d in threadpoolctl.threadpool_info():
        print(f"  {d['user_api']:7s} {d['num_threads']} threads  {d['filepath']}")
    print("OS threads in this process:", len(os.listdir("/proc/self/task"))
          if os.path.isdir("/proc/self/task") else "?")


if __name__ == "__main__":
    main()
