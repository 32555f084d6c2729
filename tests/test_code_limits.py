"""Size limits of the library's own code (python/fastbp and src/cpp): no function over 80
lines of code and none with a cyclomatic complexity over 30, as lizard counts them."""
from pathlib import Path

import pytest

lizard = pytest.importorskip("lizard")

ROOT = Path(__file__).resolve().parents[1]
MAX_NLOC, MAX_CCN = 80, 30


def _functions():
    files = [p for p in (ROOT / "python" / "fastbp").rglob("*.py")]
    files += [p for p in (ROOT / "src" / "cpp").rglob("*") if p.suffix in (".cpp", ".h")]
    for path in sorted(files):
        info = lizard.analyze_file(str(path))
        for fn in info.function_list:
            yield path.relative_to(ROOT), fn


def test_function_sizes():
    too_big = [f"{path}:{fn.start_line} {fn.name}: {fn.nloc} lines, CCN {fn.cyclomatic_complexity}"
               for path, fn in _functions()
               if fn.nloc > MAX_NLOC or fn.cyclomatic_complexity > MAX_CCN]
    assert not too_big, "functions over the limits:\n" + "\n".join(too_big)


def test_ruff_clean():
    """The tree is clean under the ruff configuration in pyproject.toml."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    proc = subprocess.run([ruff, "check", "--no-cache", "python", "tests", "bench", "examples",
                           "scripts"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
