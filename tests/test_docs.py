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
@pytest.mark.parametrize("page", [p for p in PAGES if not p.endswith("tour.md")],  # the tour: its own test below
                         ids=[os.path.basename(p) for p in PAGES if not p.endswith("tour.md")])
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
    assert {os.path.basename(p) for p in PAGES} >= {"quickstart.md", "compare.md", "tour.md"}


@pytest.mark.docs
def test_the_tours_warnings_are_the_true_ones_and_name_a_fix(tmp_path):
    """The newcomer's tour: the centred model's divergences are reported as local moves with the
    reparameterisation as the fix; the other two models print no warning at all."""
    script = tmp_path / "tour.py"
    script.write_text(page_script(os.path.join(ROOT, "docs", "tour.md")))
    out = subprocess.run([sys.executable, "-W", "always", str(script)], capture_output=True, text=True, timeout=900,
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    warned = [line for line in out.stderr.splitlines()
              if any(f"{kind}Warning:" in line for kind in ("User", "Runtime", "Future"))]
    assert any("divergent local move" in w and "LocScaleReparam" in w for w in warned), warned
    # Every warning comes from the centred model's check_sl (the first one of the page), and each
    # names a fix: the reparameterisation, or (chains that disagree) a longer run.
    first = min(int(re.search(r"tour\.py:(\d+)", w).group(1)) for w in warned)
    assert all(f"tour.py:{first}:" in w for w in warned), warned
    assert all("LocScaleReparam" in w or "Run longer" in w for w in warned), warned


def _local_links(path):
    """``(target, is_image)`` of every relative link in a markdown file (code spans and blocks skipped)."""
    text = re.sub(r"```.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for bang, target in re.findall(r"(!?)\[[^\]]*\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            yield target.split("#")[0], bool(bang)


def test_links_and_images_in_the_docs_resolve():
    """Every relative link and image in the README, the docs and the benchmark reports exists."""
    pages = [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "*.md")),
             *glob.glob(os.path.join(ROOT, "benchmarks", "*.md"))]
    dead = [f"{os.path.relpath(page, ROOT)} -> {target}" for page in pages for target, _ in _local_links(page)
            if not os.path.exists(os.path.join(os.path.dirname(page), target))]
    assert not dead, "dead links: " + "; ".join(dead)


def test_the_docs_cite_nothing_a_reader_cannot_open():
    """The README and the docs are for users: no references to the team's internal material."""
    internal = re.compile(r"seeds['’]|the seeds\b|design notes|DESIGN\.md|\.\./shared", re.I)
    pages = [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "*.md"))]
    found = [f"{os.path.basename(p)}: {m.group(0)!r}" for p in pages for m in internal.finditer(open(p, encoding="utf-8").read())]
    assert not found, found
    # One way to install, from a clone (slppl is not on PyPI): `pip install -e .` and its extras.
    installs = [m.group(0) for p in pages for m in re.finditer(r"pip install [^`\n]*slppl[^`\n]*", open(p, encoding="utf-8").read())]
    assert not installs, installs


def test_every_name_on_the_api_page_resolves():
    import importlib

    names = re.findall(r"^::: ([\w.]+)", open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8").read(), re.M)
    assert len(names) > 20
    unresolved = []
    for name in names:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError as err:
                if err.name in ("torch", "pyro"):  # an extra not installed here (the Python 3.12 leg)
                    break
                continue
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                unresolved.append(name)
            break
        else:
            unresolved.append(name)
    assert not unresolved, unresolved
