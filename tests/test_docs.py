"""The documentation's complete examples run, and the site builds.

Every code block fenced as ``python`` in ``docs/*.md`` is part of a complete program: the blocks of
one page run in order, as one script, in a fresh process (fragments are fenced as ``py``).
"""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted(p for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
               if "```python\n" in open(p, encoding="utf-8").read())


def page_script(path):
    text = open(path, encoding="utf-8").read()
    return "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


@pytest.mark.docs  # ~3 min: not in `make test`; CI runs it as `make test-docs`
@pytest.mark.parametrize("page", PAGES, ids=[os.path.basename(p) for p in PAGES])
def test_documentation_examples_run(page, tmp_path):
    code = page_script(page)
    if "import pyro" in code:
        pytest.importorskip("pyro", reason="the page's Pyro example needs slppl[pyro]")
    script = tmp_path / "page.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]


def test_every_example_page_is_found():
    assert {os.path.basename(p) for p in PAGES} >= {"quickstart.md", "compare.md"}
