"""Command lines whose single-value options may be given once.

argparse keeps the last of an option given twice, silently: a second ``--env-kwargs`` dropped
the first one's ``drift_rate`` (the run trained and was recorded with the default), and
``--seeds 0,1 --seeds 2`` ran seed 2 alone. :func:`parse_args` refuses the repeat instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

_GIVEN = "_options_given"


class _StoreOnce(argparse._StoreAction):
    """A single-value option (``--name VALUE``) that refuses a second occurrence."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if option_string is not None:
            # On the namespace, not the action: a parser may parse more than once.
            given: set[str] = namespace.__dict__.setdefault(_GIVEN, set())
            if self.dest in given:
                parser.error(f"{option_string} given twice; give it once")
            given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


def _store_once(parser: argparse.ArgumentParser) -> None:
    """Make every single-value option of ``parser`` and its commands a :class:`_StoreOnce`."""
    for action in parser._actions:
        if type(action) is argparse._StoreAction:
            action.__class__ = _StoreOnce
        elif isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _store_once(command)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, except that a single-value option given twice is an
    error (exit status 2, "``--name`` given twice; give it once") rather than the last one
    silently winning. Options that collect (``append``, ``count``) and flags are unchanged."""
    _store_once(parser)
    args = parser.parse_args(argv)
    args.__dict__.pop(_GIVEN, None)
    return args
