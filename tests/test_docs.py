"""The documentation site builds in strict mode, shows every page, and documents the whole API."""
from __future__ import annotations

import enum
import html
import importlib
import inspect
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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for this module's tests: ``mkdocs build --strict``."""
    out_dir = tmp_path_factory.mktemp("site")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(out_dir)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stderr, out.stderr
    return out_dir


def test_mkdocs_builds_the_site_in_strict_mode(site):
    api = (site / "api" / "index.html").read_text()
    assert 'id="ultrarun.worker.Worker"' in api and "Minimise" in api  # from the docstrings


def _text(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def test_no_page_shows_a_raw_sphinx_role(site):
    roles = {}
    for page in site.rglob("*.html"):
        found = re.findall(r":(?:class|meth|func|attr|mod|exc|data|obj|ref|py:\w+):`?[~\w.]+",
                           _text(page.read_text()))
        if found:
            roles[page.relative_to(site).as_posix()] = found[:5]
    assert not roles, f"raw Sphinx roles in the rendered pages: {roles}"


def _public_callables() -> dict[str, object]:
    """Every public class and function that takes parameters (not exceptions or enums)."""
    out = {}
    for name in ultrarun.__all__:
        obj = getattr(ultrarun, name)
        if name == "__version__" or (isinstance(obj, type) and issubclass(obj, (BaseException,
                                                                                enum.Enum))):
            continue
        out[name] = obj
    return out


def _section(api: str, object_id: str) -> str:
    """The rendered entry of one object, up to its first member or the next object."""
    start = api.index(f'id="{object_id}"')
    following = [m.start() for m in re.finditer(r'<h\d id="ultrarun\.[^"]+"', api[start + 1:])]
    return api[start:start + 1 + following[0]] if following else api[start:]


def _resolve(dotted: str) -> object | None:
    """The object a rendered heading id names (``ultrarun.master.Master.run``), or None."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _named_parameters(obj: object) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values() if p.name not in ("self", "cls")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def test_every_public_class_and_function_has_a_parameter_table(site):
    """Google-style Args sections rendered by mkdocstrings as tables: every class, function
    and method of the API reference that takes parameters has a table with a row for each
    named parameter of its signature (exceptions and enums aside)."""
    api = (site / "api" / "index.html").read_text()
    ids = re.findall(r'<h\d id="(ultrarun\.[\w.]+)"', api)
    public = {f"{obj.__module__}.{name}".split("._")[0] for name, obj in _public_callables().items()}
    missing, checked = {}, set()
    for object_id in ids:
        obj = _resolve(object_id)
        if (obj is None or not callable(obj) or isinstance(obj, type) and issubclass(
                obj, (BaseException, enum.Enum))):
            continue
        params = _named_parameters(obj)
        if not params:
            continue
        checked.add(object_id.rsplit(".", 1)[1])
        table = re.search(r"Parameters:</span>.*?<table>(.*?)</table>", _section(api, object_id),
                          re.DOTALL)
        rows = set(re.findall(r"<td>\s*<code>(\w+)</code>\s*</td>", table.group(1))) if table else set()
        if set(params) - rows:
            missing[object_id] = sorted(set(params) - rows)
    assert not missing, f"API entries without a complete parameter table: {missing}"
    with_params = {name for name, obj in _public_callables().items() if _named_parameters(obj)}
    assert with_params <= checked, f"not in the API reference: {sorted(with_params - checked)}"
    assert public  # every public name resolved


def test_api_headings_are_public_names_and_internals_are_hidden(site):
    api = (site / "api" / "index.html").read_text()
    headings = [_text(h) for h in re.findall(r'<h2 id="ultrarun\.[^"]+"[^>]*>(.*?)</h2>', api,
                                              re.DOTALL)]
    assert not [h for h in headings if "ultrarun." in h], headings
    for internal in ("job_callback", "adjust_queue_size", "active_iterations"):
        assert f'id="ultrarun.master.Master.{internal}"' not in api
    assert 'class="doc doc-signature' in api or "doc-signature" in api  # separate signatures


def test_the_site_shows_the_version_and_the_repository(site):
    config = _mkdocs_config()
    home = (site / "index.html").read_text()
    assert f"ultrarun {ultrarun.__version__}" in _text(home)
    assert f'href="{config["repo_url"]}"' in home


def test_the_home_page_shows_the_report_and_three_ways_in(site):
    home = (site / "index.html").read_text()
    assert 'src="img/report.png"' in home
    for page in ("quickstart/", "cluster/", "migrating/"):
        assert f'href="{page}' in home, page
    for shot in ("report.png", "home.png", "api-minimize.png"):
        data = (DOCS / "img" / shot).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20000, shot


def test_the_troubleshooting_page_quotes_messages_the_code_still_gives():
    source = "".join(p.read_text() for p in (ROOT / "ultrarun").rglob("*.py"))
    source = re.sub(r'"\s*\n\s*f?"', "", source)  # implicitly joined string literals
    headings = re.findall(r"^### `(.+)`$", (DOCS / "troubleshooting.md").read_text(),
                          re.MULTILINE)
    assert len(headings) >= 15
    assert [h for h in headings if h not in source] == []


def test_the_changelog_and_license_are_there():
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{ultrarun.__version__}]" in changelog and "## [Unreleased]" in changelog


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
