"""A recipe run as a script puts recipes/ first on sys.path: a recipe named like a package
(recipes/empeval.py, recipes/miti.py) would shadow it, and `import empeval` would load the recipe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.bad_inputs import ENV, INPUTS_1000


def test_no_recipe_shadows_an_importable_package():
    # In a fresh interpreter: a test process may already hold recipes/ on sys.path, or a recipe
    # imported as a sibling module, and then every recipe would find itself.
    code = ("import importlib.util, json, pathlib, sys; print(json.dumps([p.name for p in "
            "sorted(pathlib.Path(sys.argv[1]).glob('*.py')) if p.stem in sys.stdlib_module_names "
            "or importlib.util.find_spec(p.stem) is not None]))")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "recipes")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shadowing = json.loads(proc.stdout)
    assert shadowing == [], f"rename these recipes (e.g. <name>_train.py): {shadowing}"


@pytest.mark.integration
def test_a_recipe_script_imports_the_evaluator_packages_not_same_named_recipes(tmp_path):
    """`python recipes/x.py` puts recipes/ first on sys.path: a recipe file named like a package
    (as recipes/empeval.py and recipes/miti.py were, before their *_train.py names) shadows it. With no
    trained artifact the scorer must stop at "no artifact", not at an import error."""
    argv = [sys.executable, str(REPO_ROOT / "recipes" / "eval_paper.py"), "--preset", "tiny", "--out=ev",
            f"--inputs={INPUTS_1000}", "--refs.annomi80=tiny-base", "--refs.full_plus=tiny-base",
            "--scorers=empeval", "--quick_empeval=false", f"--empeval={tmp_path}/none"]
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "is not a package" not in proc.stderr and "cannot be imported" not in proc.stderr, proc.stderr


@pytest.mark.integration
def test_no_recipe_file_is_named_like_a_package():
    packages = {p.name for p in (REPO_ROOT / "evaluators").iterdir() if (p / "__init__.py").is_file()} | {"therapy_align"}
    assert not {p.stem for p in (REPO_ROOT / "recipes").glob("*.py")} & packages
