"""MiniGrid's Memory tasks: the expert that looks at the start room's object before it goes to
the match (data/matching.py), on the real environments."""

import numpy as np
import pytest

from data import demos
from data.demos import generate
from data.envs import MEMORY, by_family, make_env
from data.expert import FORWARD
from data.known_map import UNSEEN
from data.matching import Matching, start_object
from data.teachers import expert_length

MEMORY_IDS = by_family()[MEMORY][1]


def test_every_memory_size_is_supported():
    assert sorted(MEMORY_IDS) == sorted(
        f"MiniGrid-Memory{s}-v0" for s in ("S7", "S9", "S11", "S13", "S13Random", "S17Random")
    )


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_the_expert_solves_every_memory_task_with_noise(env_id):
    found, meta = generate(env_id, 20, seed=0, noise=0.3)
    assert meta["expert"] == "explorer" and meta["expert_success_rate"] == 1.0, meta
    assert found.episodes == 20


def play(env_id: str, env_seed: int):
    """The expert's episode: each step's (agent cell, whether the start room's object had been
    seen, the action), its reward, and the expert's length measured on a copy beforehand."""
    env = make_env(env_id, checked=False)
    obs, _ = env.reset(seed=env_seed)
    length = expert_length(env)
    teacher, u = Matching(env), env.unwrapped
    steps, done, reward = [], False, 0.0
    while not done:
        plan = teacher.label(env, obs)
        seen = teacher.known.cell(*start_object(u))[0] != UNSEEN
        steps.append((tuple(int(v) for v in u.agent_pos), seen, plan[0]))
        obs, reward, terminated, truncated, _ = env.step(plan[0])
        done = terminated or truncated
    return steps, reward, length, u


@pytest.mark.parametrize("env_id", ["MiniGrid-MemoryS7-v0", "MiniGrid-MemoryS13Random-v0"])
def test_it_looks_at_the_start_object_before_it_chooses_a_side(env_id):
    behind = 0
    for env_seed in range(2**32, 2**32 + 30):
        steps, reward, length, u = play(env_id, env_seed)
        assert reward > 0 and length == len(steps)
        split = u.success_pos[0]  # the split's column: where a side is chosen
        assert all(seen for (x, _), seen, _ in steps if x == split)
        if not steps[0][1]:  # out of view at the start: it turns to look before it goes on
            behind += 1
            assert steps[0][2] != FORWARD
    assert 0 < behind < 30


def test_a_noisy_step_never_lands_beside_the_wrong_object():
    env = make_env("MiniGrid-MemoryS7-v0", checked=False)
    env.reset(seed=0)
    u = env.unwrapped
    fx, fy = u.failure_pos
    u.agent_pos = np.array((fx, fy + 1 if fy < u.height // 2 else fy - 1))
    u.agent_dir = 3 if fy < u.height // 2 else 1  # facing the wrong side's cell
    assert tuple(int(v) for v in u.front_pos) == u.failure_pos
    rng = np.random.default_rng(0)
    assert FORWARD not in {demos._perturbation(env, rng) for _ in range(50)}
    u.agent_dir = (u.agent_dir + 2) % 4  # facing away: forward is among the choices
    assert FORWARD in {demos._perturbation(env, rng) for _ in range(50)}
