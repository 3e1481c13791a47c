"""The documentation: the MkDocs site under docs/ builds with ``--strict`` (a broken link,
a missing anchor or a page left out of the nav fails), and every relative link of
README.md, which MkDocs does not build, reaches a file that exists (and an anchor the
built site has).

mkdocs lives in a venv of its own (dev/test: LAYERVENV_MKDOCS, in .cache/tools): its
dependencies would otherwise land in the test Python, whose packages the simulated stack
shows.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO
from helpers import missing

# [text](target) and [text](target "title"); images too. Code spans and fenced code are
# removed first, so a `[x](y)` shown as code is not taken for a link.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)


def _mkdocs() -> list[str]:
    """mkdocs from its own venv (dev/test), else the test Python's; absent: skip, or fail in CI."""
    mkdocs = os.environ.get("LAYERVENV_MKDOCS") or str(REPO / ".cache" / "tools" / "bin" / "mkdocs")
    if os.access(mkdocs, os.X_OK):
        return [mkdocs]
    if importlib.util.find_spec("mkdocs") is None:
        missing("mkdocs is not installed (the docs extra)",
                "dev/test puts it into .cache/tools")
    return [sys.executable, "-m", "mkdocs"]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_mkdocs(), "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _build(REPO / "mkdocs.yml", out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return out


def test_site_builds_strict(site: Path) -> None:
    pages = sorted(p.relative_to(REPO / "docs") for p in (REPO / "docs").rglob("*.md"))
    assert pages, "docs/ has no pages"
    for page in pages:
        assert _built(site, page).is_file(), f"{page} was not built"


def _built(site: Path, page: Path) -> Path:
    """Where MkDocs (use_directory_urls) writes docs/PAGE.md: PAGE/index.html."""
    stem = page.with_suffix("")
    return site / (stem.parent if stem.name == "index" else stem) / "index.html"


@pytest.mark.parametrize("breakage", [
    ("exit-status.md", "[gone](no-such-page.md)"),
    ("exit-status.md", "[gone](reproducible.md#no-such-anchor)"),
    ("exit-status.md", "[gone](#no-such-anchor-here)"),
    ("orphan.md", "# Not in the nav"),
])
def test_strict_build_fails_on_a_broken_link(tmp_path: Path, breakage: tuple[str, str]) -> None:
    """The check can fail: a copy of the site with one broken link (or a page left out of
    the nav) does not build."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page, text = breakage
    with open(tmp_path / "docs" / page, "a") as f:
        f.write(f"\n{text}\n")
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0, result.stderr
    assert "WARNING" in result.stderr


def _relative_links(markdown: str) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return [t for t in LINK.findall(text) if not urlsplit(t).scheme and not t.startswith("//")]


def test_link_pattern_finds_links_outside_code() -> None:
    sample = "[a](x.md) `[b](y.md)` ![c](img.png \"t\")\n```\n[d](z.md)\n```\n[e](<w.md#k>)\n"
    assert _relative_links(sample) == ["x.md", "img.png", "w.md#k"]


def test_readme_links_reach_existing_files_and_anchors(site: Path) -> None:
    links = _relative_links((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(links) >= 10, links  # the README points into docs/
    broken = []
    for link in links:
        parts = urlsplit(link)
        target = (REPO / unquote(parts.path)).resolve() if parts.path else REPO / "README.md"
        if not target.exists():
            broken.append(f"{link}: no such file")
            continue
        if parts.fragment:
            if target.suffix == ".md" and target.is_relative_to(REPO / "docs"):
                html = _built(site, target.relative_to(REPO / "docs")).read_text(encoding="utf-8")
                ids = set(re.findall(r'\bid="([^"]+)"', html))
            else:  # an anchor into README.md itself, or another file GitHub renders
                ids = {_github_slug(h) for h in re.findall(
                    r"^#+\s+(.*)$", FENCE.sub("", target.read_text(encoding="utf-8")), re.M)}
            if parts.fragment not in ids:
                broken.append(f"{link}: no anchor {parts.fragment!r} in {target.name}")
    assert not broken, "\n".join(broken)


def _github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_module_is_in_the_architecture_map() -> None:
    """docs/architecture.md maps every module of the package (a new module is placed on
    the map, or the test names it); and names none that is gone."""
    package = REPO / "src" / "layervenv"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if "__pycache__" not in p.parts}
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", page, re.MULTILINE)
    mapped = {name if package_name == "(top)" else f"{package_name}/{name}"
              for package_name, name in rows}
    assert sorted(modules - mapped) == [], "modules missing from docs/architecture.md"
    assert sorted(mapped - modules) == [], "docs/architecture.md names modules that are gone"


#: docs/stacks/index.md's table: the commands proven on each kind (its columns, in order)
MATRIX_COLUMNS = ["kind", "page", "create", "bash", "zsh", "tcsh", "run", "shell", "list",
                  "check", "--imports", "lock/from", "rebase", "pack", "kernel", "explain"]
#: a test named in a cell: its pytest id below tests/ (a function, or one of its params)
TEST_ID = re.compile(r"`(test_\w+\.py::test_\w+(?:\[[^`\]]*\])?)`")


def _collected(files: set[str], *options: str) -> set[str]:
    """The test ids pytest itself collects from ``files`` (tests/ relative)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-p", "no:randomly", *options,
                          *(f"tests/{f}" for f in sorted(files))],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode in (0, 5), out.stdout[-3000:] + out.stderr[-3000:]
    return {line.removeprefix("tests/") for line in out.stdout.splitlines()
            if line.startswith("tests/") and "::" in line}


def _named(test_id: str, collected: set[str]) -> bool:
    return test_id in collected or ("[" not in test_id and any(
        c.startswith(test_id + "[") for c in collected))


def test_the_stack_table_names_tests_that_exist() -> None:
    """docs/stacks/index.md's table of kinds x commands: each cell is "yes" with the tests
    that prove it, or "no (why)"; every test it names is one pytest collects (so the
    table cannot name a test that is gone or misspelt), and a "yes" is never proven by a
    test marked xfail."""
    page = (REPO / "docs" / "stacks" / "index.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in page.splitlines() if line.startswith("| ")]
    assert rows and rows[0] == MATRIX_COLUMNS, rows[:1]
    kinds = [row[0] for row in rows[1:]]
    assert len(kinds) >= 8, kinds
    proving: dict[str, str] = {}
    named: dict[str, str] = {}
    for row in rows[1:]:
        assert len(row) == len(MATRIX_COLUMNS), row
        for column, cell in zip(MATRIX_COLUMNS[2:], row[2:]):
            where = f"{row[0]} / {column}: {cell}"
            if cell.startswith("yes"):
                yes = cell.split("no (")[0]
                ids = TEST_ID.findall(yes)
                assert ids, f"a yes names no test: {where}"
                proving.update((i, where) for i in ids)
            else:
                assert re.fullmatch(r"no \(.+\)", cell), f"neither yes nor no (why): {where}"
            named.update((i, where) for i in TEST_ID.findall(cell))
    files = {i.split("::")[0] for i in named}
    collected = _collected(files)
    assert [w for i, w in named.items() if not _named(i, collected)] == []
    expected_to_fail = _collected(files, "-m", "xfail")
    assert [w for i, w in proving.items() if _named(i, expected_to_fail)] == []
