"""The documentation site builds in strict mode, shows every page, and documents the whole API."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import ultrarun

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _mkdocs_config() -> dict:
    # mkdocs.yml may hold python tags (!!python/name:...); none are needed to read the nav
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)


def test_mkdocs_builds_the_site_in_strict_mode(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stderr, out.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert 'id="ultrarun.worker.Worker"' in api and "Minimise" in api  # from the docstrings


def test_every_page_in_docs_is_in_the_nav():
    nav = _nav_pages(_mkdocs_config()["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages


def test_the_api_reference_has_every_public_name():
    text = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: ultrarun\.[\w.]*?(\w+)$", text, re.MULTILINE))
    documented |= set(re.findall(r"^        - (\w+)$", text, re.MULTILINE))  # listed members
    public = {name for name in ultrarun.__all__ if name != "__version__"}
    assert public <= documented, f"missing in docs/api.md: {sorted(public - documented)}"


def test_readme_points_to_the_docs_site():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1]
    assert "mkdocs serve" in section and "mkdocs build --strict" in section


def _files_in(page: Path) -> dict[str, str]:
    """The python blocks of a page that start with ``# NAME.py``: whole files to copy."""
    blocks = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", page.read_text(), re.DOTALL)
    return {name: f"# {name}\n{body}" for name, body in blocks}


@pytest.mark.slow
def test_the_quickstart_files_run_as_written(tmp_path):
    files = _files_in(DOCS / "quickstart.md")
    assert set(files) == {"first_run.py", "my_worker.py"}
    outputs = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        out = subprocess.run([sys.executable, name], cwd=tmp_path, capture_output=True,
                             text=True, timeout=180)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        outputs[name] = out.stdout
    assert "best configuration: {'lr':" in outputs["first_run.py"]
    assert (tmp_path / "first_run" / "results.json").exists()
    assert "budget 9: loss " in outputs["my_worker.py"]


@pytest.mark.slow
def test_the_readme_cluster_recipe_runs_as_written(tmp_path):
    """README's four steps, with /shared/exp1 in a temporary directory and this machine's
    loopback address for the name server's."""
    section = (ROOT / "README.md").read_text().split("## Using it on a cluster", 1)[1]
    shell = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    master = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)

    def here(text: str) -> str:
        return (text.replace("/shared/exp1", str(tmp_path / "exp1"))
                .replace("\"$(hostname -I | cut -d' ' -f1)\"", "127.0.0.1"))

    steps = [shlex.split(here(line).rstrip(" &")) for line in shell.splitlines()
             if line.startswith("ultrarun ")]
    assert [s[1] for s in steps] == ["nameserver", "worker", "status"]
    (tmp_path / "exp1").mkdir()
    (tmp_path / "master.py").write_text(here(master))
    started = [subprocess.Popen([sys.executable, "-m", *step], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for step in steps[:2]]
    try:
        out = subprocess.run([sys.executable, "master.py"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=240)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.startswith("{'x1': ")
        assert started[1].wait(timeout=60) == 0, "the master shut the workers down"
        lines = (tmp_path / "exp1" / "results" / "results.json").read_text().splitlines()
        assert len(lines) == 40 + 17 + 8 + 4  # BOHB's four brackets between budgets 1 and 27
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=30)
