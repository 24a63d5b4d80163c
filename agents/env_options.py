"""The env's user model and other arguments from the command line (``--user-model``,
``--env-kwargs``), checked before any work starts."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from movielens_env import MovieLensRecEnv, parse_user_model, variant_kwargs
from movielens_env.checks import episode_length
from movielens_env.errors import ArgumentError

from .config_values import strict_json

# Chosen by other options of the commands, or by the evaluation itself.
_NOT_HERE = ("dataset", "data_dir", "split", "render_mode")


def add_env_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--user-model`` and ``--env-kwargs`` to a command."""
    parser.add_argument(
        "--user-model", default=None, metavar="MODEL",
        help="'static' (default), 'boredom', 'drift', 'patience' or a '+'-joined combination; "
        "episodes get the horizon that suits the model (as the registered variants: 10, 20 "
        "with drift, 50 with patience)",
    )  # fmt: skip
    parser.add_argument(
        "--env-kwargs", default=None, metavar="JSON",
        help="other MovieLensRec-v0 arguments as a JSON object, e.g. "
        '\'{"drift_rate": 0.3, "max_episode_steps": 30}\'; they override --user-model\'s',
    )  # fmt: skip


def env_options(args: argparse.Namespace) -> dict[str, Any]:
    """The env arguments ``--user-model`` and ``--env-kwargs`` ask for.

    Raises:
        ValueError: unknown user model, text that is not a JSON object, or an argument the env
            does not take; the message names it and what is allowed.
    """
    options: dict[str, Any] = {}
    if args.user_model is not None:
        options.update(variant_kwargs(args.user_model))
    if args.env_kwargs:
        extra = strict_json(args.env_kwargs, f"--env-kwargs {args.env_kwargs!r}")
        if not isinstance(extra, dict):
            raise ArgumentError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
        if args.user_model is None and "user_model" in extra:  # the model's horizon, as with
            options.update(variant_kwargs(extra["user_model"]))  # --user-model
        if args.user_model is not None and "user_model" in extra:
            if parse_user_model(extra["user_model"]).name != options["user_model"]:
                raise ArgumentError(
                    f"--user-model {args.user_model!r} and --env-kwargs' user_model "
                    f"{extra['user_model']!r} disagree; give the user model once"
                )
        options.update(extra)
    if "user_model" in options:  # one name per model, as stored runs and results are keyed
        options["user_model"] = parse_user_model(options["user_model"]).name
    allowed = set(inspect.signature(MovieLensRecEnv).parameters) - set(_NOT_HERE)
    allowed.add("max_episode_steps")
    unknown = sorted(set(options) - allowed)
    if unknown:
        where = ", ".join(repr(k) for k in unknown)
        raise ArgumentError(
            f"--env-kwargs: {where} cannot be set here; allowed: {', '.join(sorted(allowed))} "
            "(dataset and data_dir have their own options)"
        )
    if "max_episode_steps" in options:  # before any data is read
        episode_length(options["max_episode_steps"])
    return options


def nonempty(option: str, text: str) -> str:
    """``text`` unless it is empty or blank (a path option left empty would mean the current
    folder, or quietly the default)."""
    if not text.strip():
        raise ArgumentError(f"{option} {text!r}: the path is empty")
    return text
