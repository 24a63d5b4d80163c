"""Helpers the tests share: small env arguments, hand-made catalogues, GroupLens-layout files
and brute-force returns (never real data)."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from movielens_env import MovieLensRecEnv, RatingsDataset
from movielens_env.data.parsing import ItemMetadata, RawRatings
from movielens_env.data.ratings import from_raw
from movielens_env.data.synthetic import generate_ratings
from movielens_env.simulator.user_model import COMPONENT_PARAMETERS

# Small embeddings and few ALS sweeps keep env construction well under a second.
SMALL_ENV_KWARGS = {"embedding_dim": 16, "mf_options": {"iterations": 5}}
# The same, smaller, as the command line's --env-kwargs; and an SB3 run of a few seconds.
TINY_ENV_KWARGS = {"embedding_dim": 8, "mf_options": {"iterations": 2}}
TINY_ENV_JSON = json.dumps(TINY_ENV_KWARGS)
# A DRR network and replay small enough for a test to train in seconds.
SMALL_DRR = {"hidden": 32, "batch_size": 16, "learning_starts": 16, "buffer_size": 500}


def drr_observations(rng: np.random.Generator, items: np.ndarray, n: int, history: int):
    """``n`` flat DRR observations: a random user vector, then ``history`` of ``items``."""
    users = rng.normal(size=(n, items.shape[1]))
    held = items[rng.integers(0, len(items), (n, history))].reshape(n, -1)
    return np.concatenate([users, held], axis=1).astype(np.float32)


TINY_SB3 = ["--timesteps", "60", "--set", "learning_starts=20", "--set", "batch_size=16",
            "--set", "net_arch=[32]", "--set", "buffer_size=1000",
            "--env-kwargs", TINY_ENV_JSON]  # fmt: skip


def last_wins(argv: list[str]) -> list[str]:
    """``argv`` with each single-value option once: at its first place, with its last value.

    The CLI refuses an option given twice; tests build a command from a helper's defaults and
    then override some of them, as a user writes the command once with the values wanted.
    """
    from agents.cli import build_parser

    takes_value = {
        option
        for command in build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        for action in command._actions
        if type(action) is argparse._StoreAction
        for option in action.option_strings
    }
    kept: list[str] = []
    at: dict[str, int] = {}
    tokens = iter(argv)
    for token in tokens:
        if token in takes_value:
            value = next(tokens)
            if token in at:
                kept[at[token] + 1] = value
                continue
            at[token] = len(kept)
            kept += [token, value]
        else:
            kept.append(token)
    return kept


def cli_error(capsys) -> str:
    """What the CLI printed on stderr, checked to be its one error line."""
    err = capsys.readouterr().err
    assert err.startswith("movielens-rec: error: ") and err.count("\n") == 1, err
    return err


GENRES = (("Action",), ("Action",), ("Action",), ("Comedy",), ("Comedy",), ("Drama",),
          ("Action", "Comedy"), ("Comedy", "Drama"))  # fmt: skip


def tiny_dataset(n_users: int = 30, seed: int = 0) -> RatingsDataset:
    """Every user rates all 8 items (genres above), the first two liked, in time order."""
    rng = np.random.default_rng(seed)
    n_items = len(GENRES)
    users = np.repeat(np.arange(1, n_users + 1), n_items)
    items = np.tile(np.arange(1, n_items + 1), n_users)
    ratings = rng.integers(1, 6, n_users * n_items).astype(np.float32)
    order = np.concatenate([rng.permutation(n_items) for _ in range(n_users)])
    ratings[order < 2] = 5.0  # the first two in time are liked: the history
    raw = RawRatings(users, items, ratings, 1_000 + order.astype(np.int64))
    genres = np.empty(n_items, dtype=object)
    genres[:] = list(GENRES)
    metadata = ItemMetadata(np.arange(1, n_items + 1), np.array(["t"] * n_items, object), genres)
    return from_raw("tiny", raw, (1.0, 5.0), metadata)


def tiny_env(tiny: RatingsDataset, **kwargs) -> MovieLensRecEnv:
    """An env on a tiny catalogue: 3-dim vectors, histories of 2."""
    args = {"embedding_dim": 3, "history_len": 2, "mf_options": {"iterations": 3}}
    return MovieLensRecEnv(dataset=tiny, **{**args, **kwargs})


def candidates_in_order(env: MovieLensRecEnv, user_raw: int) -> list[int]:
    env.reset(options={"user_id": user_raw})
    return env.candidate_items().tolist()


def episode_return(env: MovieLensRecEnv, user_raw: int, items) -> float:
    env.reset(options={"user_id": user_raw})
    total = 0.0
    for item in items:
        _, reward, terminated, _, _ = env.step_items([item])
        total += reward
        if terminated:
            break
    return total


def exhaustive_best(env: MovieLensRecEnv, user_raw: int, horizon: int) -> float:
    """The best return over every sequence of distinct candidates (brute force)."""
    candidates = candidates_in_order(env, user_raw)
    return max(
        episode_return(env, user_raw, sequence)
        for sequence in itertools.permutations(candidates, horizon)
    )


def write_ml100k(folder: Path, seed: int = 4, n_users: int = 80) -> None:
    """A small catalogue in ml-100k's own file layout (u.data, u.item with genre flags)."""
    raw, _ = generate_ratings(n_users, 200, 3000 * n_users // 80, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = zip(raw.users, raw.items, raw.ratings.astype(int), raw.timestamps, strict=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    rng = np.random.default_rng(seed)
    lines = []
    for item in range(1, 201):
        flags = (rng.random(19) < 0.15).astype(int)
        flags[0] = 0
        flags[1 + item % 18] = 1  # every item has a genre
        lines.append(
            f"{item}|Movie {item} (1995)|01-Jan-1995||http://x|" + "|".join(map(str, flags))
        )
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")


@st.composite
def env_args(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments the env accepts on the fixture data (120 users, 300 items)."""
    candidates = draw(st.sampled_from(["all", "rated"]))
    # "rated" pools hold 4 or more items, so small slates end episodes within a few steps;
    # with "all", slates of 100+ items end them too.
    slate = st.integers(1, 4) if candidates == "rated" else st.integers(1, 3) | st.integers(90, 150)
    reward_model = draw(st.sampled_from(["mf", "logged", "oracle"]))
    unrated = [-0.5, -1.0, 0.0, 0.75] if reward_model == "logged" else [-0.5]
    return {
        "history_len": draw(st.integers(1, 12)),
        "slate_size": draw(slate),
        "candidates": candidates,
        "reward_model": reward_model,
        "unrated_reward": draw(st.sampled_from(unrated)),
        "split": draw(st.sampled_from(["train", "test"])),
        "obs_mode": draw(st.sampled_from(["flat", "dict"])),
        "item_bias": draw(st.booleans()),
    }


def user_model_kwargs(user_model: str, **parameters: Any) -> dict[str, Any]:
    """``user_model`` with those of ``parameters`` that its components use (the env refuses
    parameters of a component that is off)."""
    used = {p for c, names in COMPONENT_PARAMETERS.items() if c in user_model for p in names}
    return {"user_model": user_model, **{k: v for k, v in parameters.items() if k in used}}
