"""MiniGrid's Dynamic-Obstacles tasks: the expert that plans around the moving balls afresh at
every step (data/dodging.py), on the real environments."""

import numpy as np
import pytest

from conftest import by_size
from data import demos
from data.demos import generate
from data.dodging import Dodging
from data.envs import DODGING, by_family, make_env
from data.expert import FORWARD
from data.teachers import expert_for, expert_length

DODGING_IDS = by_family()[DODGING][1]


def test_its_one_expert_serves_every_name_a_search_may_ask_for():
    for asked in ("auto", "shortest", "explorer"):
        assert expert_for("MiniGrid-Dynamic-Obstacles-8x8-v0", asked) == "shortest"


@pytest.mark.parametrize("env_id", by_size(DODGING_IDS))
def test_the_expert_reaches_the_goal_in_every_size_with_noise(env_id):
    found, meta = generate(env_id, 20, seed=0, noise=0.3)
    assert meta["expert"] == "shortest" and meta["expert_success_rate"] == 1.0, meta
    assert found.episodes == 20


@pytest.mark.parametrize("env_id", ["MiniGrid-Dynamic-Obstacles-6x6-v0"])
def test_it_steps_only_into_cells_free_when_it_steps(env_id):
    env = make_env(env_id, checked=False)
    forward_steps = 0
    for env_seed in range(2**32, 2**32 + 20):
        env.reset(seed=env_seed)
        u, length = env.unwrapped, expert_length(env)
        teacher, steps, done = Dodging(env), 0, False
        while not done:
            action = teacher.label(env, None)[0]
            if action == FORWARD:
                ahead = u.grid.get(*u.front_pos)
                assert ahead is None or ahead.type == "goal", "into a ball or a wall"
                forward_steps += 1
            _, reward, terminated, truncated, _ = env.step(action)
            steps, done = steps + 1, terminated or truncated
        assert reward > 0 and steps == length
    assert forward_steps


def test_a_noisy_step_never_walks_into_a_ball_or_a_wall():
    env = make_env("MiniGrid-Dynamic-Obstacles-5x5-v0", checked=False)
    env.reset(seed=0)
    u, rng = env.unwrapped, np.random.default_rng(0)
    u.agent_pos, u.agent_dir = np.array((1, 1)), 2  # facing the wall on its left
    assert FORWARD not in {demos._perturbation(env, rng) for _ in range(50)}
    u.agent_dir = 0  # facing into the room
    free = u.grid.get(*u.front_pos) is None
    assert (FORWARD in {demos._perturbation(env, rng) for _ in range(50)}) == free
