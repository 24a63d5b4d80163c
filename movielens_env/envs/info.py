"""The ``info`` of ``reset`` and ``step``: the same keys every time, numpy values only.

Libraries that stack infos (Gymnasium's vector envs, TorchRL, Tianshou) read the keys of the
first info and expect them again at every later one, an autoreset's included; so a reset
carries the step keys too, filled with values that say "no slate yet". Per sub-environment:

| key                  | dtype   | shape              | at ``reset``      |
|----------------------|---------|--------------------|-------------------|
| ``user_id``          | int64   | ``()``             | the user (raw id) |
| ``history_item_ids`` | int64   | ``(history_len,)`` | the history       |
| ``item_ids``         | int64   | ``(slate_size,)``  | -1 (no slate)     |
| ``ratings``          | float64 | ``(slate_size,)``  | NaN               |
| ``logged``           | bool    | ``(slate_size,)``  | False             |
| ``hits``             | bool    | ``(slate_size,)``  | False             |

At a step, ``history_item_ids`` is the history after the step (raw ids), and ``ratings`` is NaN
only for an item without a rating (``reward_model="logged"``).
"""

from __future__ import annotations

import numpy as np

from ..data.ratings import RatingsDataset
from ..simulator.world import POSITIVE_RATING

INFO_KEYS = ("user_id", "history_item_ids", "item_ids", "ratings", "logged", "hits")
NO_ITEM = -1  # ``item_ids`` where no slate has been recommended yet


def batch_info(
    data: RatingsDataset,
    users: np.ndarray,
    history: np.ndarray,
    slates: np.ndarray | None = None,
    ratings: np.ndarray | None = None,
    logged: np.ndarray | None = None,
    slate_size: int = 1,
) -> dict[str, np.ndarray]:
    """The info of a batch of users (internal ids ``users``, histories ``history``), after
    recommending ``slates`` rated ``ratings`` (``logged``: from the log); without ``slates``,
    the info of a reset (slates of ``slate_size`` filled as in the table above)."""
    n = len(users)
    if slates is None or ratings is None or logged is None:
        item_ids = np.full((n, slate_size), NO_ITEM, dtype=np.int64)
        ratings = np.full((n, slate_size), np.nan)
        logged = np.zeros((n, slate_size), dtype=bool)
    else:
        item_ids = data.item_ids[slates].astype(np.int64, copy=False)
    ratings = np.asarray(ratings, dtype=np.float64)
    return {
        "user_id": data.user_ids[users].astype(np.int64, copy=False),
        "history_item_ids": data.item_ids[history].astype(np.int64, copy=False),
        "item_ids": item_ids,
        "ratings": ratings,
        "logged": np.asarray(logged, dtype=bool),
        "hits": ratings >= POSITIVE_RATING,  # NaN (unrated, or no slate) compares False
    }


def row_info(info: dict[str, np.ndarray], row: int = 0) -> dict[str, np.ndarray | np.generic]:
    """Row ``row`` of a batch's info, as a single env returns it (``user_id`` a numpy int64)."""
    return {key: value[row] for key, value in info.items()}
