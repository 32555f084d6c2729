"""Packaging: one version everywhere, the type stub matches the native module, and fastbp
shares a process with other OpenMP/BLAS users (NumPy's OpenBLAS, PyTorch, threadpoolctl).

These run against the installed package (the project's suite, and .ci/wheel.sh against the
repaired wheel in a fresh venv). The wheel build itself is in .ci/wheel.sh.
FASTBP_EXPECT_BUNDLED_OMP=1 (set by .ci/wheel.sh) also requires that the OpenMP runtime
threadpoolctl finds for fastbp is the one bundled in the wheel (fastbp.libs/).
"""
import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core

PKG = Path(fb.__file__).resolve().parent
SOURCE_ROOT = Path(__file__).resolve().parent.parent   # the checkout these tests come from


def run_py(code, env=None, timeout=120):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=e, cwd=str(Path(fb.__file__).parents[1]))


# --------------------------------------------------------------------------------- versions

def test_version_is_single_sourced():
    from fastbp._version import __version__

    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d+)?", __version__), __version__
    assert fb.__version__ == __version__
    assert metadata.version("fastbp") == __version__          # the wheel's METADATA
    assert fb.info()["version"] == __version__
    out = subprocess.run([sys.executable, "-m", "fastbp", "--version"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == f"fastbp {__version__}"


def test_console_script_agrees():
    exe = Path(sys.executable).with_name("fastbp")
    if not exe.exists():
        exe = exe.with_suffix(".exe")
    if not exe.exists():
        pytest.skip("no fastbp console script next to this interpreter")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fastbp {fb.__version__}"
    info = json.loads(subprocess.run([str(exe), "info", "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["version"] == fb.__version__
    assert set(fb.info()) <= set(info)   # the CLI adds machine details


def test_source_tree_version_matches_installed():
    """The checkout's _version.py (read by scikit-build-core's regex provider) is what got
    installed: a stale install fails here rather than confusing other tests."""
    src = SOURCE_ROOT / "python" / "fastbp" / "_version.py"
    pyproject = SOURCE_ROOT / "pyproject.toml"
    if not src.exists() or not pyproject.exists():
        pytest.skip("not run from a source checkout")
    m = re.search(r'^__version__ = "([^"]+)"$', src.read_text(), re.M)
    assert m and m.group(1) == fb.__version__
    text = pyproject.read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert 'provider = "scikit_build_core.metadata.regex"' in text
    assert 'input = "python/fastbp/_version.py"' in text


# ------------------------------------------------------------------------------------ typing

def _stub_names():
    tree = ast.parse((PKG / "_core.pyi").read_text())
    funcs, classes = set(), {}
    bodies = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs.add(node.name)
        elif isinstance(node, ast.ClassDef):
            bodies[node.name] = node
    for name, node in bodies.items():
        if name.startswith("_"):
            continue
        members = set()
        stack = [node]
        while stack:   # the class and its (stub-only) bases
            c = stack.pop()
            members |= {n.name for n in c.body if isinstance(n, ast.FunctionDef)}
            for b in c.bases:
                bname = b.value.id if isinstance(b, ast.Subscript) else getattr(b, "id", None)
                if bname in bodies:
                    stack.append(bodies[bname])
        classes[name] = members - {"__init__"}
    return funcs, classes


def test_stub_ships_and_matches_module():
    assert (PKG / "py.typed").exists()
    assert (PKG / "_core.pyi").exists()
    funcs, classes = _stub_names()
    public = {n for n in dir(_core) if not n.startswith("_")}
    runtime_classes = {n for n in public if isinstance(getattr(_core, n), type)}
    runtime_funcs = public - runtime_classes
    assert funcs == runtime_funcs, (f"in the module, not the stub: {runtime_funcs - funcs}; "
                                    f"in the stub, not the module: {funcs - runtime_funcs}")
    assert set(classes) == runtime_classes
    for cls, members in classes.items():
        rt = {n for n in dir(getattr(_core, cls)) if not n.startswith("_")}
        assert members == rt, (f"{cls}: in the module, not the stub: {rt - members}; "
                               f"in the stub, not the module: {members - rt}")


# ------------------------------------------------------------ sharing a process: NumPy, torch

def _small_problem(dtype=np.float32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 16)).astype(dtype)
    y = (X[:, :3].sum(1) > 0).astype(np.int64)
    return X, y


def test_with_numpy_blas_in_one_process():
    X, y = _small_problem()
    A = np.random.default_rng(1).standard_normal((300, 300))
    before = A @ A
    model = fb.MLP([16, 32, 2], activation="relu", seed=0)
    h = model.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=1e-2),
                  epochs=5, batch_size=32)
    assert h["loss"][-1] < h["loss"][0]
    np.testing.assert_array_equal(A @ A, before)   # BLAS unaffected by fastbp's pool
    assert model.predict(X).shape == (200, 2)


def _openmp_entries(info):
    return [d for d in info if d.get("user_api") == "openmp"]


def test_threadpoolctl_sees_and_limits_fastbp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _core.have_openmp():
        pytest.skip("fastbp built without OpenMP")
    start = fb.get_num_threads()
    try:
        fb.set_num_threads(2)
        info = threadpoolctl.threadpool_info()
        omp = _openmp_entries(info)
        assert omp, f"threadpoolctl finds no OpenMP runtime: {info}"
        # fastbp's runtime is one of them; with a wheel, the copy bundled in fastbp.libs/
        if os.environ.get("FASTBP_EXPECT_BUNDLED_OMP") == "1":
            ours = [d for d in omp if "fastbp.libs" in d["filepath"]]
            assert ours, f"fastbp's bundled libgomp not among {omp}"
            assert ours[0]["num_threads"] == 2
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            assert fb.get_num_threads() == 1
            X, y = _small_problem()
            m = fb.MLP([16, 8, 2], seed=0)
            m.train_step(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.SGD(lr=0.1))
        assert fb.get_num_threads() == 2                     # restored on exit
        fb.set_num_threads(1)
        assert all(d["num_threads"] == 1 for d in _openmp_entries(threadpoolctl.threadpool_info())
                   if "fastbp.libs" in d["filepath"])
    finally:
        fb.set_num_threads(start)


TORCH_SCRIPT = """
import json, sys
first = sys.argv[1]
if first == "torch":
    import torch
    import fastbp as fb
else:
    import fastbp as fb
    import torch
import numpy as np

rng = np.random.default_rng(0)
X = rng.standard_normal((256, 16)).astype(np.float32)
y = (X[:, :3].sum(1) > 0).astype(np.int64)

m = fb.MLP([16, 32, 2], activation="relu", seed=0)
h = m.fit(X, y, loss="softmax_cross_entropy", optimizer=fb.optim.Adam(lr=1e-2), epochs=5)

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
tl = []
for _ in range(20):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(Xt), yt)
    loss.backward()
    opt.step()
    tl.append(loss.item())
# interleave: fastbp again after torch ran its parallel regions
h2 = m.fit(X, y, loss="softmax_cross_entropy", epochs=2)
big = torch.randn(512, 512) @ torch.randn(512, 512)

out = {"fb_loss": list(h["loss"]) + list(h2["loss"]), "torch_loss": tl,
       "fb_threads": fb.get_num_threads(), "torch_threads": torch.get_num_threads()}
try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
if threadpoolctl is not None:
    out["pools"] = [{k: d.get(k) for k in ("user_api", "internal_api", "filepath", "num_threads")}
                    for d in threadpoolctl.threadpool_info()]
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        out["limited"] = {"fb": fb.get_num_threads(), "torch": torch.get_num_threads()}
        m.fit(X, y, loss="softmax_cross_entropy", epochs=1)
        net(Xt).sum().backward()
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("first", ["fastbp", "torch"])
def test_with_torch_in_one_process(first):
    """fastbp and PyTorch (which bundles its own libgomp) imported, in either order, and both
    trained in one process: no crash, both learn; threadpoolctl limits both pools."""
    pytest.importorskip("torch")
    r = run_py(TORCH_SCRIPT.replace("sys.argv[1]", repr(first)),
               env={"OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    line = [s for s in r.stdout.splitlines() if s.startswith("RESULT ")]
    assert line, r.stdout + r.stderr
    out = json.loads(line[-1][len("RESULT "):])
    assert out["fb_loss"][4] < out["fb_loss"][0]
    assert out["torch_loss"][-1] < out["torch_loss"][0]
    assert all(np.isfinite(out["fb_loss"]))
    assert out["fb_threads"] == (2 if _core.have_openmp() else 1)   # OMP_NUM_THREADS=2
    if "pools" in out:
        omp = [p for p in out["pools"] if p["user_api"] == "openmp"]
        assert omp, out["pools"]
        assert out["limited"] == {"fb": 1, "torch": 1}, out
        if os.environ.get("FASTBP_EXPECT_BUNDLED_OMP") == "1":
            # the wheel's libgomp has its own soname: two OpenMP runtimes, two pools
            assert any("fastbp.libs" in p["filepath"] for p in omp), omp
