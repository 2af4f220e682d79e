"""A recipe run as a script puts recipes/ first on sys.path: a recipe named like a package
(recipes/empeval.py, recipes/miti.py) would shadow it, and `import empeval` would load the recipe."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO_ROOT


def test_no_recipe_shadows_an_importable_package():
    shadowing = [path.name for path in sorted((REPO_ROOT / "recipes").glob("*.py"))
                 if path.stem in sys.stdlib_module_names or importlib.util.find_spec(path.stem) is not None]
    assert shadowing == [], f"rename these recipes (e.g. <name>_train.py): {shadowing}"
