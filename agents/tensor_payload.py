"""How much a model file's unpickled payload holds once walked: the check every loader of
tensors runs before handing the payload on (DRR checkpoints, SB3 zips' ``.pth`` members).

``torch.load(..., weights_only=True)`` runs no code, but what it returns can still be far
larger than its file: pickle shares objects (40 nested pairs of one list are a few hundred
bytes and 2**40 values once walked, as torch's optimizer loading and any message do), and a
stride-0 tensor declares 10**9 values over one stored value (GBs once converted).
"""

from __future__ import annotations

from typing import Any

import torch

# This tool's model files hold their arrays as tensors (one value each) and a few lists of
# floats, far below.
MAX_NODES = 100_000_000


def expanded_size(payload: Any) -> int:
    """How many values ``payload`` holds once every shared container is walked as often as it
    is referenced (a DAG's size as a tree), computed in time linear in its distinct objects;
    more than :data:`MAX_NODES` for a tensor repeating its stored values or nesting too deep."""
    sizes: dict[int, int] = {}

    def size(value: Any) -> int:
        if isinstance(value, torch.Tensor) and value.numel() > stored_values(value):
            return MAX_NODES + 1  # a view repeating its values: see stored_values
        if not isinstance(value, dict | list | tuple):
            return 1
        known = sizes.get(id(value))
        if known is None:
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            known = sizes[id(value)] = 1 + sum(size(item) for item in items)
        return known

    try:
        return size(payload)
    except RecursionError:  # nested deeper than any model file of this tool
        return MAX_NODES + 1


def stored_values(tensor: torch.Tensor) -> int:
    """How many values ``tensor``'s storage holds. A tensor declaring more (a stride-0 view:
    one stored value standing for 10**9) is no model of this tool's, whose tensors are whole."""
    return tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)


def too_large(payload: Any) -> str:
    """Why ``payload`` is refused ("" if it is not): its containers, expanded, hold more than
    :data:`MAX_NODES` values."""
    if expanded_size(payload) <= MAX_NODES:
        return ""
    return (
        f"its containers, expanded, hold more than {MAX_NODES:,} values (lists shared many "
        "times over, or a tensor repeating one stored value, as no model file of this tool has)"
    )
