"""Every Python code block in README.md and docs/*.md runs as written, and the documents
name no path outside the repository."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks():
    for doc in DOCS:
        for i, m in enumerate(BLOCK.finditer(doc.read_text(encoding="utf-8"))):
            yield pytest.param(doc, m.group(1), id=f"{doc.relative_to(ROOT)}[{i}]")


@pytest.mark.parametrize("doc,code", list(_blocks()))
def test_code_block_runs(doc, code, tmp_path):
    # Each block runs alone, in a fresh interpreter, in an empty directory (files it writes
    # stay there); the blocks of one document do not share names.
    env = dict(os.environ, MPLBACKEND="Agg", FASTBP_DOCS_TEST="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{doc.name} block failed:\n{code}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_paths_outside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    assert "../" not in re.sub(r"https?://\S+", "", text), f"{doc.name} points outside the repo"
