"""``--plugin MODULE``: import a module that registers agents, failures named in one line."""

from __future__ import annotations

import importlib

from movielens_env.errors import ArgumentError

from .registry import importing_plugin


def import_plugin(module: str) -> None:
    """Import a ``--plugin`` module; its absence or its failure is one line naming it. The
    agents it registers are keyed by its source too (wherever their trainers live), so that a
    benchmark recomputes their stored runs when it changes."""
    try:
        with importing_plugin(module):
            importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise ArgumentError(
                f"--plugin {module}: no module of that name (is its folder on PYTHONPATH?)"
            ) from None
        raise ArgumentError(
            f"--plugin {module}: it imports {exc.name!r}, which is missing"
        ) from None
    except SystemExit as exc:  # exit 0 would end the command as if it had done its work
        raise ArgumentError(
            f"--plugin {module} called sys.exit({exc.code!r}) on import; a plugin registers "
            "agents, it does not end the command"
        ) from None
    except Exception as exc:  # the plugin's own bug: say whose, in one line
        raise ArgumentError(
            f"--plugin {module} failed on import: {type(exc).__name__}: {exc}"
        ) from None
