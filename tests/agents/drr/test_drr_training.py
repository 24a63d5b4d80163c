"""DRR training: loss goes down, same seed same agent, checkpoints resume exactly."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint
from agents.drr.config import DRRConfig
from agents.drr.train import load_agent, train_drr
from tests.helpers import SMALL_DRR

ENV = {
    "dataset": "synthetic",
    "embedding_dim": 8,
    "history_len": 5,
    "mf_options": {"iterations": 2},
}


def _weights(agent: DRRAgent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*agent.actor.parameters(), *agent.critic.parameters())]


def test_critic_loss_falls_on_a_fixed_buffer():
    env = gym.make("MovieLensRec-v0", **ENV)
    agent = DRRAgent(DRRConfig(**SMALL_DRR, critic_lr=3e-3), env.action_space.shape[0], 5, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(400):
        action = agent.act(obs[None], explore=True)[0]
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.replay.add(obs[None], action[None], [reward], next_obs[None], [float(terminated)])
        obs = env.reset()[0] if terminated or truncated else next_obs
    losses = [agent.update(beta=1.0).critic_loss for _ in range(300)]
    assert np.mean(losses[-30:]) < 0.5 * np.mean(losses[:30]), (losses[:30], losses[-30:])


def test_same_seed_same_agent_other_seed_other_agent():
    config = DRRConfig(**SMALL_DRR, eval_every=1000)
    first = train_drr(ENV, config, 12, seed=3)
    second = train_drr(ENV, config, 12, seed=3)
    other = train_drr(ENV, config, 12, seed=4)
    assert first.episode_returns == second.episode_returns
    for a, b in zip(_weights(first.agent), _weights(second.agent), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert first.episode_returns != other.episode_returns


@pytest.mark.parametrize(
    "refine",
    [{}, {"refine_k": 4, "refine_exclude": "history+shown"},
     {"n_step": 3, "critic_heads": "reward+future"},
     {"refine_k": 4, "critic_heads": "reward+future", "lookahead": 1.0, "model_candidates": 2}],
)  # fmt: skip
def test_resumed_run_equals_uninterrupted_run(tmp_path, refine):
    # 3 sub-environments: the checkpoint falls while new episodes are under way (and, with
    # refinement that remembers, while their rows hold the items they recommended).
    config = DRRConfig(**SMALL_DRR, eval_every=6, checkpoint_every=6, num_envs=3, **refine)
    straight = train_drr(ENV, config, 12, seed=1, run_dir=tmp_path / "straight")
    # Kill a run at the first episode after its first checkpoint, then resume it to the end.

    def kill(episode: int, episode_return: float) -> None:
        if (tmp_path / "resumed" / "checkpoint.pt").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_drr(ENV, config, 12, seed=1, run_dir=tmp_path / "resumed", on_episode=kill)
    resumed = train_drr(ENV, config, 12, seed=1, run_dir=tmp_path / "resumed", resume=True)
    assert resumed.episode_returns == straight.episode_returns
    assert resumed.episode_lengths == straight.episode_lengths
    assert resumed.curve == straight.curve
    for a, b in zip(_weights(resumed.agent), _weights(straight.agent), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.agent.replay.size == straight.agent.replay.size


def test_checkpoint_loads_weights_only_with_its_config(tmp_path):
    config = DRRConfig(**SMALL_DRR, state="drr-u", eval_every=1000)
    result = train_drr(ENV, config, 4, seed=0, run_dir=tmp_path)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert payload["config"]["state"] == "drr-u"
    assert DRRConfig.from_dict(payload["config"]) == config
    assert (tmp_path / "config.json").read_text() == config.to_json()
    agent, env_kwargs = load_agent(tmp_path)
    assert env_kwargs == ENV
    obs = np.random.default_rng(0).normal(size=(3, 6 * 9)).astype(np.float32)  # dim 8 + the bias
    np.testing.assert_array_equal(agent.predict(obs)[0], result.agent.predict(obs)[0])


@pytest.mark.parametrize("damage", [b"", b"not a zip", None])
def test_corrupted_or_foreign_checkpoints_are_refused(tmp_path, damage):
    train_drr(ENV, DRRConfig(**SMALL_DRR, eval_every=1000), 2, seed=0, run_dir=tmp_path)
    path = tmp_path / "checkpoint.pt"
    if damage is None:
        torch.save({"format_version": 99}, path)
        message = f"format version {FORMAT_VERSION}"
    else:
        path.write_bytes(damage if damage else path.read_bytes()[:1000])
        message = "unreadable, corrupted"
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(tmp_path)
    assert "weights_only=False" not in str(error.value)  # never advise loading that runs code


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("code ran",))

    (tmp_path / "checkpoint.pt").write_bytes(b"")
    torch.save({"format_version": 1, "evil": Exploit()}, tmp_path / "checkpoint.pt")
    said = r"its pickle calls (__builtin__|builtins)\.print"
    with pytest.raises(CheckpointError, match=said) as error:
        load_checkpoint(tmp_path)  # refused before torch reads it (agents/pickle_scan.py)
    assert "weights_only=False" not in str(error.value)


def test_a_checkpoint_that_cannot_be_written_is_an_os_error_naming_it(tmp_path):
    """torch.save to a path reports a failed write (a full disk) as an opaque RuntimeError,
    which the CLI cannot tell from a bug; the write's own OSError says what happened."""
    script = f"""
import errno, os, resource, signal, sys
from pathlib import Path
import torch
from agents.drr.checkpoint import save_checkpoint
from agents.drr.config import DRRConfig
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    save_checkpoint(Path({str(tmp_path)!r}), {{"w": torch.zeros(1_000_000)}}, DRRConfig())
except OSError as exc:
    left = sorted(os.listdir({str(tmp_path)!r}))
    print(errno.errorcode[exc.errno], Path(exc.filename).name, left)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EFBIG", "checkpoint.pt", "[]"]


def test_impossible_configs_are_refused():
    with pytest.raises(ValueError, match="state='drr-x' is not valid; allowed: drr-ave, drr-u"):
        DRRConfig(state="drr-x")
    with pytest.raises(ValueError, match="learning_starts"):
        DRRConfig(batch_size=64, learning_starts=10)
    with pytest.raises(ValueError, match=r"unknown DRRConfig keys \['lr'\]"):
        DRRConfig.from_dict({"lr": 1})


def test_a_run_too_short_to_learn_says_so():
    config = DRRConfig(**{**SMALL_DRR, "learning_starts": 400}, eval_every=1000, num_envs=2)
    with pytest.warns(
        UserWarning, match=r"no gradient step: 20 transitions .* learning_starts=400"
    ):
        result = train_drr(ENV, config, 2, seed=0)
    assert result.agent.updates == 0


def test_drr_trains_and_reloads_under_a_user_model_with_a_state(tmp_path):
    # Satiation and patience follow the history in the observation: DRR reads them as context.
    env_kwargs = {**ENV, "user_model": "boredom+drift+patience", "max_episode_steps": 6}
    config = DRRConfig(**SMALL_DRR, eval_every=1000)
    result = train_drr(env_kwargs, config, 10, seed=0, run_dir=tmp_path)
    assert len(result.episode_returns) == 10
    assert all(ret >= 0 for ret in result.episode_returns)  # rewards are (rating - 1) / 4
    agent, saved_kwargs = load_agent(tmp_path)
    assert saved_kwargs == env_kwargs
    env = gym.make("MovieLensRec-v0", **env_kwargs)
    obs, _ = env.reset(seed=0)
    assert agent.obs_dim == obs.shape[0] > 6 * 9  # user and history vectors, then the state
    np.testing.assert_array_equal(agent.predict(obs)[0], result.agent.predict(obs)[0])
    assert "online/return_mf" in result.curve[-1]


def test_the_learning_curve_holds_finite_diagnostics(tmp_path):
    from agents.drr.diagnostics import COLUMNS

    config = DRRConfig(**SMALL_DRR, eval_every=6, checkpoint_every=0, num_envs=2)
    result = train_drr(ENV, config, 12, seed=0, run_dir=tmp_path / "run")
    assert len(result.curve) == 2
    for row in result.curve:
        assert set(COLUMNS) <= set(row)
        assert all(np.isfinite(row[column]) for column in COLUMNS), row
        assert 0.0 <= row["greedy_agreement@1"] <= 1.0 and row["actor_norm"] > 0.0
        assert row["q_bias"] == pytest.approx(row["q_start"] - row["return_discounted"])
    header = (tmp_path / "run" / "learning_curve.csv").read_text().splitlines()[0].split(",")
    assert set(COLUMNS) <= set(header)


def test_the_diagnostics_are_plotted(tmp_path):
    from agents.benchmark.plots import plot_training

    config = DRRConfig(**SMALL_DRR, eval_every=6, checkpoint_every=0)
    result = train_drr(ENV, config, 12, seed=0)
    paths = plot_training(result.curve, tmp_path, "drr-ave")
    assert [p.name for p in paths] == ["precision.png", "return.png", "diagnostics.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_episodes_that_end_early_are_counted_in_the_steps_they_took():
    """The benchmark's learning curve placed every DRR episode at the full horizon: under
    patience, where users leave early, it showed 1,000 steps where 264 were taken."""
    from agents.registry import TrainContext, get_agent

    env = {**ENV, "user_model": "patience", "patience_budget": 1.0, "max_episode_steps": 20}
    result = train_drr(env, DRRConfig(**SMALL_DRR, eval_every=1000), 16, seed=0)
    lengths = np.array(result.episode_lengths)
    assert len(lengths) == 16 and (lengths >= 1).all() and (lengths <= 20).all()
    assert (lengths < 20).any()  # users left early, or the test proves little
    assert lengths.sum() <= len(result.agent.replay)  # the finished episodes' transitions
    trained = get_agent("drr-ave").train(TrainContext(env, 0, 320, None, config={**SMALL_DRR}))
    steps = [step for step, _ in trained.learning_curve]
    assert steps[-1] < 320 and np.all(np.diff(steps) >= 1)
