"""DRR training, top to bottom: step a batch of users, learn from replay, evaluate, checkpoint.

Experience comes from the native vector env (``config.num_envs`` users at once); each
transition is followed by ``updates_per_step`` gradient steps, as with a single env.
Seeded end to end: the env's user draws, the network initialisation, the exploration noise and
the replay sampling all derive from ``seed``, so the same seed gives the same agent; a run
resumed from its checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from movielens_env import ENV_ID, MovieLensRecVectorEnv
from movielens_env.checks import budget
from movielens_env.data.ratings import RatingsDataset
from movielens_env.errors import ArgumentError
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import episode_steps, evaluate, heldout_env
from movielens_env.storage import SignalsHeld, atomic_write, file_sha256

from ..fields import check_seed
from ..folder_lock import lock_folder
from ..run_folder import (
    check_no_split,
    check_trained_env,
    model_swapped,
    read_run_info,
    write_run_info,
)
from ..threads import torch_threads
from .agent import DRRAgent
from .checkpoint import (
    CHECKPOINT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    to_numpy,
    to_torch,
)
from .config import DRRConfig
from .diagnostics import evaluation_diagnostics, greedy_first_items
from .nstep import NStepWindows
from .run_dir import (
    CURVE_FILE,
    LOCATION_KEYS,
    RUN_FILES,
    RunFolderError,
    check_run_dir,
    portable_env_kwargs,
    remove_run,
)


@dataclass
class TrainResult:
    """The trained agent, its evaluation rows and its per-episode training returns and lengths
    (environment steps: an episode may end before the horizon, a user leaving)."""

    agent: DRRAgent
    curve: list[dict[str, float]] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)


def _check_resumed_state(
    run_dir: Path, payload: dict[str, Any], num_envs: int, obs_dim: int, held: int
) -> None:
    """Refuse a checkpoint whose training state is not what this trainer saved: arrays of
    the sub-environments' shape, one return (and length) per episode held, numbers."""
    # Checkpoints from before episode lengths were kept have neither of these.
    optional = {"lengths", "episode_lengths"}
    shapes = {"obs": (num_envs, obs_dim), "running": (num_envs,), "lengths": (num_envs,)}
    for name, shape in shapes.items():
        value = payload.get(name)
        if name in optional and value is None:
            continue
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            raise CheckpointError(f"{run_dir / CHECKPOINT}: its {name} is not of shape {shape}")
    counts = {"episode_returns": held, "episode_lengths": held, "losses": None, "td_errors": None}
    for name, count in counts.items():
        value = payload.get(name)
        if name in optional and value is None:
            continue
        if (
            not isinstance(value, list)
            or (count is not None and len(value) != count)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise CheckpointError(
                f"{run_dir / CHECKPOINT}: its {name} is not a list of numbers"
                + (f" of one per episode held ({held})" if count is not None else "")
            )


def _json_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(portable_env_kwargs(env_kwargs)))
    except TypeError:
        raise ArgumentError(
            "DRR runs are saved with a dataset given by name, not as an object"
        ) from None


def train_drr(
    env_kwargs: dict[str, Any],
    config: DRRConfig,
    episodes: int,
    seed: int,
    run_dir: Path | None = None,
    resume: bool = False,
    on_episode: Callable[[int, float], None] = lambda episode, ret: None,
    overwrite: bool = False,
    on_evaluation: Callable[[dict[str, float]], None] = lambda row: None,
) -> TrainResult:
    """Train DRR for ``episodes`` episodes of ``MovieLensRec-v0`` (train split).

    Every ``config.eval_every`` episodes (and at the end) the agent is evaluated on the test
    split; every ``config.checkpoint_every`` episodes (and at the end) the run is checkpointed
    into ``run_dir``. A ``run_dir`` that already holds a run is refused unless ``resume``
    (continue it: same config, seed and env; ``episodes`` is the new total, at least the
    episodes it holds) or ``overwrite`` (replace it). ``on_evaluation`` gets each evaluation's
    row of the learning curve as it is made (an exception it raises ends the run there).
    """
    budget("episodes", episodes)
    check_seed("seed", seed)
    check_no_split(env_kwargs)
    if run_dir is None and resume:
        raise RunFolderError("resume needs the run folder (run_dir) to continue from")
    # Held while checked and trained into: a second trainer there (the CLI, another notebook)
    # would find it empty too, then one run would replace the other's without a word.
    with (
        nullcontext() if run_dir is None else lock_folder(Path(run_dir), "train", RunFolderError),
        torch_threads(1),
    ):
        if run_dir is not None:
            run_dir = Path(run_dir)
            check_run_dir(run_dir, resume, overwrite)
        return _train(
            env_kwargs, config, episodes, seed, run_dir, resume, on_episode, overwrite,
            on_evaluation,
        )  # fmt: skip


def _train(
    env_kwargs, config, episodes, seed, run_dir, resume, on_episode, overwrite, on_evaluation
) -> TrainResult:
    # --- set-up: envs, agent, and (when resuming) everything the checkpoint restores
    envs = training_envs(env_kwargs, config.num_envs)  # bad env arguments fail here, first
    # The run being replaced is removed only when the new one first writes (its first
    # checkpoint), so a replacement killed before then leaves the old run whole.
    replacing = run_dir is not None and overwrite
    dim, history_len = gym.spaces.flatdim(envs.single_action_space), envs.history_len
    obs_dim = gym.spaces.flatdim(envs.single_observation_space)
    data = envs.world.dataset.fingerprint()
    width = _episode_items(env_kwargs, envs.slate_size)
    agent = DRRAgent(
        config, dim, history_len, seed, obs_dim, envs.vectors.items, envs.user_model.weights,
        width,
    )  # fmt: skip
    result = TrainResult(agent)
    running, losses, td_errors = np.zeros(envs.num_envs), [], []
    lengths = np.zeros(envs.num_envs, dtype=np.int64)
    shown = None  # the items each row's episode has recommended, where refinement skips them
    if config.remembers_shown:
        shown = np.full((envs.num_envs, width), -1, dtype=np.int64)
    greedy_first = greedy_first_items(env_kwargs)
    windows = None  # the steps not yet folded into n-step transitions
    if config.n_step > 1:
        windows = NStepWindows(config.n_step, config.gamma, envs.num_envs, obs_dim, dim)
    if resume:
        check_own_checkpoint(run_dir)  # before the file is read: a crafted one may not load
        payload, saved_config = load_checkpoint(run_dir)
        if saved_config != config or payload["seed"] != seed:
            raise RunFolderError(
                f"{run_dir}: the checkpoint was made with another config or seed; resume with "
                "the run's own (see its config.json and run.json)"
            )
        if payload["env_kwargs"] != _json_env_kwargs(env_kwargs):
            raise RunFolderError(
                f"{run_dir}: the checkpoint was made on another env ({payload['env_kwargs']}); "
                "resume with the same dataset and env arguments"
            )
        if payload["data"] != data:
            raise RunFolderError(
                f"{run_dir}: the checkpoint was trained on other ratings (data fingerprint "
                f"{payload['data'][:12]}, these are {data[:12]}); resume on the same data"
            )
        held = int(payload["agent"]["episodes"])
        if held > episodes:
            raise RunFolderError(
                f"{run_dir} already holds {held} episodes; "
                f"--episodes is the run's total, so it must be at least that, not {episodes}"
            )
        evaluated = payload["curve"][-1].get("episode") if payload["curve"] else None
        if held == episodes and evaluated != held:  # its last numbers are of an older agent
            raise RunFolderError(
                f"{run_dir} already holds the {held} episodes asked, so nothing is trained, and "
                f"was last evaluated {'never' if evaluated is None else f'at episode {evaluated}'}"
                f": give more --episodes to continue it, or see it with movielens-rec evaluate"
            )
        _check_resumed_state(run_dir, payload, envs.num_envs, obs_dim, held)
        agent.load_state_dict(payload["agent"])
        envs.load_state_dict(to_numpy(payload["envs"]))
        obs, running = payload["obs"].numpy(), payload["running"].numpy().copy()
        # Checkpoints before episode lengths were kept: full-length episodes, as then assumed.
        if "lengths" in payload:
            lengths = payload["lengths"].numpy().copy()
        if shown is not None:
            shown = payload["shown"].numpy().copy()
        if windows is not None:
            windows.load_state_dict(to_numpy(payload["windows"]))
        result.episode_lengths = list(
            payload.get("episode_lengths", [episode_steps(env_kwargs)] * held)
        )
        losses, td_errors = list(payload["losses"]), list(payload["td_errors"])
        result.curve, result.episode_returns = payload["curve"], payload["episode_returns"]
    else:
        obs, _ = envs.reset(seed=seed)
    # A readable record naming the agent (movielens-rec evaluate finds its loader by it).
    run_info = {"agent": config.state, "config": config.to_dict(),
                "episodes": episodes, "seed": seed}  # fmt: skip
    if run_dir is not None:  # a run in no folder may train on a dataset object
        run_info["env_kwargs"] = _json_env_kwargs(env_kwargs)
        run_info["data"] = data  # the ratings' fingerprint, as SB3's record holds it
    if resume:
        # A run continued past the total it was planned with differs from one planned that long
        # (its exploration and learning schedules ran to the first total): its record says so.
        recorded = read_run_info(run_dir) or {}
        planned = recorded.get("extended_from", recorded.get("episodes"))
        if isinstance(planned, int) and planned < episodes:
            run_info["extended_from"] = planned

    while agent.episodes < episodes:
        # --- one step of every sub-environment with exploration noise, then learn from replay
        before = agent.episodes
        beta = config.per_beta + (1.0 - config.per_beta) * before / max(episodes - 1, 1)
        actions = agent.act(obs, explore=True, shown=_shown_mask(agent, shown))
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        ended = np.flatnonzero(terminated | truncated)
        if shown is not None:
            _remember(shown, info, ended, lengths, envs.world.dataset)
        stored_next = next_obs
        if len(ended):  # same-step autoreset: an ended row's true next state is its final_obs
            stored_next = next_obs.copy()
            stored_next[ended] = np.stack(info["final_obs"][ended])
        next_shown = None if shown is None else shown.copy()
        if windows is None:
            agent.replay.add(
                obs, actions, rewards, stored_next, terminated.astype(np.float32), next_shown
            )
        else:
            agent.replay.add(
                *windows.push(obs, actions, rewards, stored_next, terminated, ended, next_shown)
            )
        if shown is not None:
            shown[ended] = -1
        if len(agent.replay) >= config.learning_starts:
            for _ in range(config.updates_per_step * envs.num_envs):
                stats = agent.update(beta)
                losses.append(stats.critic_loss)
                td_errors.append(stats.td_error)
        running += rewards
        lengths += 1
        for row in ended:
            if agent.episodes == episodes:  # episodes beyond the budget are not counted
                break
            agent.end_episode()
            result.episode_returns.append(float(running[row]))
            result.episode_lengths.append(int(lengths[row]))
            on_episode(agent.episodes, float(running[row]))
        running[ended] = 0.0
        lengths[ended] = 0
        obs = next_obs

        # --- evaluate on the test split, and checkpoint
        done = agent.episodes
        last = done == episodes
        if _crossed(before, done, config.eval_every) or (last and before < done):
            evaluated = evaluate(agent, env_kwargs, name=config.state)
            metrics = evaluated.summary()
            recent = result.episode_returns[-config.eval_every :]
            point: dict[str, float] = {
                "episode": done, "train_return": float(np.mean(recent)),
                "critic_loss": float(np.mean(losses)) if losses else float("nan"),
            }  # fmt: skip
            diagnostics = evaluation_diagnostics(
                agent, env_kwargs, evaluated, greedy_first, td_errors
            )
            result.curve.append(
                {**point, **{m: metrics[m] for m in names.TRAINING_CURVE}, **diagnostics}
            )
            losses, td_errors = [], []
            on_evaluation(result.curve[-1])
        if run_dir is not None and (
            (last and before < done) or _crossed(before, done, config.checkpoint_every)
        ):
            payload = {
                "agent": agent.state_dict(), "envs": to_torch(envs.state_dict()),
                "obs": torch.as_tensor(obs), "running": torch.as_tensor(running),
                "lengths": torch.as_tensor(lengths), "episode_lengths": result.episode_lengths,
                **({} if shown is None else {"shown": torch.as_tensor(shown)}),
                **({} if windows is None else {"windows": to_torch(windows.state_dict())}),
                "losses": losses, "td_errors": td_errors, "curve": result.curve,
                "episode_returns": result.episode_returns, "seed": seed, "dim": dim,
                "history_len": history_len, "obs_dim": obs_dim,
                "env_kwargs": _json_env_kwargs(env_kwargs), "data": data,
            }  # fmt: skip
            record = {**run_info, "episodes_done": done, "model": CHECKPOINT}
            _save_with_record(run_dir, payload, config, record, replacing)
            replacing = False
    if run_dir is not None and result.curve:
        write_curve(run_dir / CURVE_FILE, result.curve)
    if agent.updates == 0:
        warnings.warn(
            f"DRR took no gradient step: {len(agent.replay)} transitions were collected and "
            f"learning starts at learning_starts={config.learning_starts}; train for more "
            "episodes or lower learning_starts (with train: --set learning_starts=N)",
            stacklevel=3,
        )
    return result


def _episode_items(env_kwargs: dict[str, Any], slate_size: int) -> int:
    """The most items an episode of ``env_kwargs`` recommends: the width of the replay's
    shown items, the same when a run is trained and when it is loaded."""
    return episode_steps(env_kwargs) * slate_size


def _shown_mask(agent: DRRAgent, shown: np.ndarray | None) -> np.ndarray | None:
    """``(rows, n_items)`` the items ``shown`` lists (-1 padded) for each row, or ``None``."""
    if shown is None or agent.refiner is None:
        return None
    return agent.refiner.catalogue.mask_of(torch.from_numpy(shown)).numpy()


def _remember(
    shown: np.ndarray, info: dict[str, Any], ended: np.ndarray, lengths: np.ndarray,
    data: RatingsDataset,
) -> None:  # fmt: skip
    """Write into ``shown`` the items a step recommended (``info``'s raw ``item_ids``; an
    ended row's in its ``final_info``), after the ``lengths`` steps each row's episode took
    before it."""
    items = info["item_ids"].copy()
    if len(ended):
        items[ended] = info["final_info"]["item_ids"][ended]
    slate = items.shape[1]
    columns = lengths[:, None] * slate + np.arange(slate)
    shown[np.arange(len(shown))[:, None], columns] = data.item_index(items)


def _save_with_record(
    run_dir: Path, payload: dict[str, Any], config: DRRConfig, record: dict[str, Any],
    replacing: bool,
) -> None:  # fmt: skip
    """Save a checkpoint and the ``run.json`` (``record``) holding its digest, in an order that
    leaves, wherever the process stops, a ``run.json`` that accepts the checkpoint beside it:
    before the new checkpoint takes its name, ``run.json`` accepts the old one and the new one;
    after, the new one alone. A first checkpoint gets its ``run.json`` only after it: a run
    killed before then leaves no record that would make its folder look like a run to resume.
    A run being replaced is removed once its successor's files are whole on disk."""
    digest = ""

    def publishing(checkpoint_tmp: Path) -> None:
        nonlocal digest
        digest = file_sha256(checkpoint_tmp)
        # From here the old run's removal, the records and the renames finish together: a
        # Ctrl-C there would lose the old run and discard the new one's files.
        held.hold()
        if replacing:
            remove_run(run_dir, RUN_FILES)
        try:
            previous = read_run_info(run_dir)
        except RunFolderError:
            previous = None
        recorded = (previous or {}).get("model_sha256")
        if previous is not None and recorded is not None:
            accepted = recorded if isinstance(recorded, list) else [recorded]
            kept = {k: v for k, v in previous.items() if k != "checksum"}
            write_run_info(run_dir, {**kept, "model_sha256": [*accepted[-1:], digest]})

    with SignalsHeld() as held:
        save_checkpoint(run_dir, payload, config, publishing)
        write_run_info(run_dir, {**record, "model_sha256": digest})


def check_own_checkpoint(run_dir: Path) -> None:
    """Refuse a checkpoint other than the one ``run.json`` records the digest of (copied in
    from another run: its config and seed would be continued, or evaluated, as this run's).

    Raises:
        RunFolderError: naming the checkpoint.
    """
    swapped = model_swapped(run_dir, read_run_info(run_dir) or {})
    if swapped:  # runs saved before the digest was kept: none
        raise RunFolderError(swapped)


def training_envs(env_kwargs: dict[str, Any], num_envs: int) -> MovieLensRecVectorEnv:
    """The native vector env DRR collects from, with same-step autoreset (train split)."""
    envs = gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **env_kwargs,
    )
    return cast(MovieLensRecVectorEnv, envs)  # the registered vector entry point's class


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]`` (never for ``every`` 0)."""
    return every > 0 and after // every > before // every


def write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    """The evaluation rows as CSV, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write, suffix=".csv")


def load_agent(run_dir: Path, **location: Any) -> tuple[DRRAgent, dict[str, Any]]:
    """The trained agent of a run directory and the env kwargs it was trained with: its dataset
    and env semantics, plus ``location`` (``data_dir``, ``cache_dir``, ``download``: where the
    data and caches live is the caller's business).

    Raises:
        CheckpointError: the checkpoint is unreadable, of another format, incomplete, or its
            weights do not fit its own config; or the env those arguments make is not the one
            it was trained on (other ratings, other observation or action length).
    """
    if set(location) - set(LOCATION_KEYS):
        raise ArgumentError(
            f"load_agent takes only where data and caches live ({', '.join(LOCATION_KEYS)}), "
            f"got {sorted(location)}; the run's env arguments are its own"
        )
    payload, config = load_checkpoint(run_dir)
    path = Path(run_dir) / CHECKPOINT
    try:
        dims = {key: int(payload[key]) for key in ("dim", "history_len", "obs_dim")}
        env_kwargs = {**portable_env_kwargs(dict(payload["env_kwargs"])), **location}
        data = str(payload["data"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _incomplete(path, exc) from None
    env = heldout_env(env_kwargs)
    try:
        agent = DRRAgent(
            config, dims["dim"], dims["history_len"], int(payload["seed"]), dims["obs_dim"],
            env.vectors.items, env.user_model.weights,
            _episode_items(env_kwargs, env.slate_size),
        )  # fmt: skip
        agent.load_state_dict(payload["agent"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise _incomplete(path, exc) from None
    check_trained_env(path, env, dims, data, CheckpointError)
    return agent, env_kwargs


def _incomplete(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path}: incomplete, or its weights do not fit its own config "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    )
