"""Every text the code cites by name ("design.md section 4") is in the repository, under docs/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SCANNED = ("allegro_sync", "tests", "bench", "scripts", "README.md", "ARCHITECTURE.md", "docs")
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "results"}

CITED = re.compile(r"\b[\w-]+\.md\b")
# a citation with a directory part, which must resolve as written (outside docs/, whose sources
# name files of other repositories)
CITED_PATH = re.compile(r"(?<![\w./-])((?:\.\.?/|[\w-]+/)+[\w-]+\.md)\b")
# a file or directory ARCHITECTURE.md names in backquotes (`daemon/consumer.py`, `tests/e2e/`);
# placeholders (`handlers/<concern>.py`) and globs are not names
NAMED_PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)*/(?:[\w-]+\.\w+)?)`")


def scanned_files() -> Iterator[Path]:
    for name in SCANNED:
        top = ROOT / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            if not path.is_file() or SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
                continue
            yield path


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # binary files cite nothing
        return None


def citations(pattern: re.Pattern[str], *, in_docs: bool = True) -> dict[str, list[str]]:
    """Cited name -> the files citing it."""
    found: dict[str, list[str]] = {}
    for path in scanned_files():
        if not in_docs and path.is_relative_to(DOCS):
            continue
        text = read_text(path)
        if text is None:
            continue
        for match in pattern.finditer(text):
            found.setdefault(match.group(match.lastindex or 0), []).append(
                str(path.relative_to(ROOT))
            )
    return found


def test_the_scan_finds_the_known_citations() -> None:
    cited = citations(CITED)
    assert {"design.md", "allegro-api.md", "style.md"} <= cited.keys()


def test_every_cited_doc_is_in_the_repository() -> None:
    missing = {
        name: sorted(set(where))
        for name, where in citations(CITED).items()
        if not (DOCS / name).is_file() and not (ROOT / name).is_file()
    }
    assert not missing, f"cited but neither in docs/ nor at the repository root: {missing}"


def test_cited_paths_resolve() -> None:
    unresolved: dict[str, list[str]] = {}
    for cited, where in citations(CITED_PATH, in_docs=False).items():
        for citing in set(where):
            if not (ROOT / cited).is_file() and not ((ROOT / citing).parent / cited).is_file():
                unresolved.setdefault(cited, []).append(citing)
    assert not unresolved, f"cited paths that do not resolve: {unresolved}"


def test_docs_readme_lists_every_doc() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"]
    unlisted = [name for name in unlisted if f"({name})" not in index]
    assert not unlisted, f"docs/README.md has no line for {unlisted}"


def test_architecture_names_only_files_that_exist() -> None:
    """ARCHITECTURE.md's module map and recipes name real files (under the root or under
    ``allegro_sync/``), so a move or a rename that forgets the map fails here."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(NAMED_PATH.findall(text))
    assert {"daemon/consumer.py", "handlers/registry.py", "tests/e2e/flows.py"} <= named
    missing = sorted(
        name
        for name in named
        if not (ROOT / name).exists() and not (ROOT / "allegro_sync" / name).exists()
    )
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
