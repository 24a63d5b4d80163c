"""The four state representations: output shapes and gradients."""

from __future__ import annotations

import pytest
import torch

from agents.drr.networks import Actor, Critic
from agents.drr.state import StateRepresentation

DIM, N, BATCH = 6, 4, 3
EXPECTED_DIMS = {
    "drr-n": N * DIM,
    "drr-p": (N + 6) * DIM,
    "drr-u": (N + 6) * DIM,
    "drr-ave": 3 * DIM,
}


@pytest.mark.parametrize("kind", list(EXPECTED_DIMS))
def test_output_shape(kind):
    module = StateRepresentation(kind, DIM, N)
    state = module(torch.randn(BATCH, DIM), torch.randn(BATCH, N, DIM))
    assert state.shape == (BATCH, EXPECTED_DIMS[kind]) == (BATCH, module.out_dim)


def test_drr_ave_is_user_user_times_pooled_pooled():
    module = StateRepresentation("drr-ave", DIM, N)
    user, history = torch.randn(BATCH, DIM), torch.randn(BATCH, N, DIM)
    pooled = history.mean(dim=1)  # weights start at 1/n: a plain average
    expected = torch.cat([user, user * pooled, pooled], dim=1)
    torch.testing.assert_close(module(user, history), expected)


def test_drr_u_and_p_hold_the_pairwise_products():
    user, history = torch.randn(1, DIM), torch.randn(1, N, DIM)
    u_state = StateRepresentation("drr-u", DIM, N)(user, history).reshape(-1, DIM)
    p_state = StateRepresentation("drr-p", DIM, N)(user, history).reshape(-1, DIM)
    torch.testing.assert_close(u_state[0], user[0] * history[0, 0])
    torch.testing.assert_close(u_state[N], history[0, 0] * history[0, 1])  # first pair (0, 1)
    torch.testing.assert_close(p_state[:N], history[0])
    torch.testing.assert_close(p_state[-1], history[0, N - 2] * history[0, N - 1])


@pytest.mark.parametrize("kind", ["drr-p", "drr-u", "drr-ave"])
def test_position_weights_receive_gradients(kind):
    module = StateRepresentation(kind, DIM, N)
    module(torch.randn(BATCH, DIM), torch.randn(BATCH, N, DIM)).pow(2).sum().backward()
    assert module.weights.grad is not None and module.weights.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", list(EXPECTED_DIMS))
def test_actor_and_critic_train_their_state_module(kind):
    obs = torch.randn(BATCH, (N + 1) * DIM)
    actor, critic = Actor(kind, DIM, N, 16, 0), Critic(kind, DIM, N, 16, 0)
    action = actor(obs)
    assert action.shape == (BATCH, DIM) and action.abs().max() <= 1
    critic(obs, action).sum().backward()
    assert critic(obs, action).shape == (BATCH,)
    trainable = [p for p in actor.state.parameters()] + [p for p in critic.state.parameters()]
    assert all(p.grad is not None for p in trainable) and (kind == "drr-n") == (not trainable)
    assert "state.weights" in critic.state_dict() or kind == "drr-n"  # saved with the network


def test_actor_and_critic_read_the_context_after_the_history():
    # Under user models with a state (satiation, patience), the observation goes on after the
    # history; both networks read it, so changing it alone changes their outputs.
    context = 4
    obs = torch.randn(BATCH, (N + 1) * DIM + context)
    actor, critic = Actor("drr-ave", DIM, N, 16, context), Critic("drr-ave", DIM, N, 16, context)
    other = obs.clone()
    other[:, -context:] += 1.0
    action = actor(obs)
    assert not torch.allclose(action, actor(other))
    assert not torch.allclose(critic(obs, action), critic(other, action))
