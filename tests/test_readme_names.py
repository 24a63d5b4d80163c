"""Every public name the README shows (dotted names in backticks, imports in its code blocks)
is importable where it says."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
DOTTED = sorted(set(re.findall(r"`((?:movielens_env|agents)(?:\.\w+)+)", README)))
IMPORTS = sorted(
    {
        (module, name.strip())
        for module, names in re.findall(
            r"^from ((?:movielens_env|agents)[\w.]*) import (.+)$", README, re.M
        )
        for name in names.split(",")
    }
)


def _resolve(dotted: str) -> object:
    """The object ``dotted`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_readme_shows_names_at_all():
    assert len(DOTTED) >= 5 and IMPORTS


@pytest.mark.parametrize("dotted", DOTTED)
def test_every_dotted_name_in_the_readme_resolves(dotted):
    _resolve(dotted)


@pytest.mark.parametrize("module, name", IMPORTS)
def test_every_import_in_the_readme_works(module, name):
    assert hasattr(importlib.import_module(module), name)
