"""The layout docs/architecture.md promises, checked on the source: imports flow one way, the library
never loads code by file path, TRL configs are passed through rather than copied, comments give
reasons rather than tracker numbers, and the shipped evaluator and its guide stay their size."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# What each part of the library may import (besides itself and the top-level helpers). Command-line
# modules (``cli.py``) sit above everything and may import any stage.
ALLOWED = {
    "top": set(),
    "data": set(),
    "training": {"data"},
    "safety": {"data"},
    "empeval": set(),
    "miti": {"data", "empeval"},
    "evaluation": {"data", "training", "safety", "empeval", "miti"},
    "chat": {"data", "training", "evaluation", "safety"},
    "rl": {"data", "training", "evaluation", "safety", "empeval", "miti"},
}
STAGES = {p.name for p in (REPO_ROOT / "src" / "therapy_align").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
LIBRARY = [*(REPO_ROOT / "src" / "therapy_align").rglob("*.py"), *(REPO_ROOT / "evaluators").rglob("*.py")]


def _part(module: str) -> str | None:
    head, _, rest = module.partition(".")
    if head in ("empeval", "miti"):
        return head
    if head != "therapy_align":
        return None
    stage = rest.split(".", 1)[0]
    return stage if stage in STAGES else "top"


def _own_part(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT)
    if rel.parts[0] == "evaluators":
        return rel.parts[1]
    return rel.parts[2] if len(rel.parts) > 3 else "top"


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_imports_flow_one_way():
    wrong = []
    for path in LIBRARY:
        if path.name == "cli.py":
            continue
        own = _own_part(path)
        for line, module in _imports(path):
            part = _part(module)
            if part is None or part in (own, "top"):
                continue
            if part not in ALLOWED[own]:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{line}: {own} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_library_never_loads_code_by_file_path():
    pattern = re.compile(r"spec_from_file_location|SourceFileLoader|runpy\.|exec\(open|load_recipe")
    hits = [f"{p.relative_to(REPO_ROOT)}:{i}" for p in LIBRARY
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_comments_give_reasons_not_tracker_numbers():
    pattern = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    files = [*LIBRARY, *(REPO_ROOT / "recipes").rglob("*.py"), *(REPO_ROOT / "scripts").rglob("*.py"),
             *(REPO_ROOT / "benchmarks").rglob("*.py")]
    hits = [f"{p.relative_to(REPO_ROOT)}:{i}" for p in files
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


TRL_CONFIGS = {"SFTConfig", "GRPOConfig", "DPOConfig"}


def test_trl_configs_are_passed_through_not_copied_field_by_field():
    """A TRL config is built from the recipe's trainer section (``section.build(...)``) plus at most a
    handful of arguments that depend on the run; a call with more keywords is a hand copy."""
    wrong = []
    for path in [*LIBRARY, *(REPO_ROOT / "recipes").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if (name in TRL_CONFIGS or name == "build") and len(node.keywords) > 12:
                wrong.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {name} with {len(node.keywords)} keywords")
    assert not wrong, wrong


def test_the_shipped_evaluator_and_its_guide_stay_small():
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (REPO_ROOT / "evaluators" / "empeval").rglob("*.py"))
    assert lines <= 2400, f"evaluators/empeval/ has {lines} lines: studies belong in research/"
    guide = len((REPO_ROOT / "docs" / "evaluator.md").read_text(encoding="utf-8").splitlines())
    assert guide <= 250, f"docs/evaluator.md has {guide} lines: measurements belong in docs/research/"


def test_the_safety_guide_stays_a_guide():
    guide = len((REPO_ROOT / "docs" / "safety.md").read_text(encoding="utf-8").splitlines())
    assert guide <= 300, f"docs/safety.md has {guide} lines: measurement records belong in docs/research/"


@pytest.mark.parametrize("package", sorted(STAGES | {"empeval", "miti"}))
def test_tests_are_laid_out_like_the_package(package):
    assert (REPO_ROOT / "tests" / package).is_dir(), f"tests/{package}/ missing"
