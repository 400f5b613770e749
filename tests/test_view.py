"""The fast view and full-state encoding (data/view.py) against MiniGrid's own functions, at
every step of episodes that wander (random actions) and that make progress (the expert's
plan: keys picked up and carried, doors opened), in every supported environment."""

import copy

import numpy as np
import pytest
from minigrid.minigrid_env import MiniGridEnv

from conftest import by_size
from data.bot import Bot, Stuck
from data.dodging import Dodging
from data.envs import (
    DODGING,
    MEMORY,
    family_of,
    full_state,
    instructed,
    make_env,
    reach_the_goal_ids,
)
from data.expert import shortest_plan
from data.matching import Matching
from data.teachers import told
from data.view import grid_encoding, observation


def minigrid_observation(u) -> dict:
    return MiniGridEnv.gen_obs(u)  # the class's method: make_env replaced the instance's


def expert_action(env) -> int | None:
    """The task's expert's next action from here: the shortest plan's first, or on a mission in
    words what a fresh BabyAIBot suggests, on Memory the matching expert's from this view, among
    moving obstacles the way around them (None where it has nothing)."""
    if family_of(env.spec.id) == DODGING:
        return Dodging(env).label(env, None)[0]
    if family_of(env.spec.id) == MEMORY:
        plan = Matching(env).label(env, observation(env.unwrapped))
        return plan[0] if plan else None
    if not instructed(env.spec.id):
        plan = shortest_plan(env)
        return plan[0] if plan else None
    try:
        return int(Bot(told(env).unwrapped).replan())
    except Stuck:
        return None


def wander(env, seed: int, steps: int, rng: np.random.Generator):
    """Yield the unwrapped env after reset and after every step: first ``seed % 4`` left turns
    (so every direction is seen), then the expert's next action half the time (so doors open
    and keys are carried), else any of the seven actions."""
    env.reset(seed=seed)
    u = env.unwrapped
    yield u
    for step in range(steps):
        expert = expert_action(env) if rng.random() < 0.5 else None
        action = 0 if step < seed % 4 else expert if expert is not None else int(rng.integers(7))
        _, _, terminated, truncated, _ = env.step(action)
        yield u
        if terminated or truncated:
            break


# Every reach-the-goal id, a Memory task (walls that hide), moving obstacles, and one of each
# family with a mission in words (objects to carry, boxes, several doors and keys).
VIEWED = [
    *reach_the_goal_ids(),
    "MiniGrid-MemoryS13Random-v0",
    "MiniGrid-Dynamic-Obstacles-Random-6x6-v0",
    "MiniGrid-KeyCorridorS3R2-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-PutNear-8x8-N3-v0",
    "MiniGrid-Fetch-8x8-N3-v0",
    "MiniGrid-ObstructedMaze-2Dl-v0",
    "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "BabyAI-GoToLocal-v0",
    "BabyAI-UnblockPickup-v0",
    "BabyAI-BossLevel-v0",
]


@pytest.mark.parametrize("env_id", by_size(VIEWED))
def test_view_and_state_are_minigrids(env_id):
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    seen = {"directions": set(), "carrying": 0, "hidden": 0}
    for seed in range(4):
        for u in wander(env, seed, 60, rng):
            expected = minigrid_observation(u)
            got = observation(u)
            assert got["image"].dtype == expected["image"].dtype == np.uint8
            np.testing.assert_array_equal(got["image"], expected["image"])
            assert got["direction"] == expected["direction"]
            assert got["mission"] == expected["mission"]
            np.testing.assert_array_equal(grid_encoding(u.grid), u.grid.encode())
            seen["directions"].add(u.agent_dir)
            seen["carrying"] += u.carrying is not None
            seen["hidden"] += int((expected["image"][..., 0] == 0).any())
    assert seen["directions"] == {0, 1, 2, 3}
    if "DoorKey" in env_id:
        assert seen["carrying"], "no step carried the key: the carried-object cell went untested"
    if not u.see_through_walls:
        assert seen["hidden"], "no view had a hidden cell: the visibility sweep went untested"


def test_envs_observe_through_the_fast_view():
    env = make_env("MiniGrid-DoorKey-8x8-v0")
    obs, _ = env.reset(seed=3)
    u = env.unwrapped
    np.testing.assert_array_equal(obs["image"], minigrid_observation(u)["image"])
    for action in shortest_plan(env)[:-1]:
        obs, *_ = env.step(action)
        np.testing.assert_array_equal(obs["image"], minigrid_observation(u)["image"])
    assert u.carrying is not None or any(
        o is not None and o.type == "door" and o.is_open for o in u.grid.grid
    )


def test_a_copied_env_observes_itself():
    env = make_env("MiniGrid-DoorKey-8x8-v0")
    env.reset(seed=0)
    copied = copy.deepcopy(env)
    obs, *_ = copied.step(1)  # turn right: only the copy's view changes
    np.testing.assert_array_equal(obs["image"], minigrid_observation(copied.unwrapped)["image"])
    assert obs["direction"] != env.unwrapped.agent_dir


def test_full_state_is_the_grids_own_encoding_and_the_mission():
    env = make_env("MiniGrid-FourRooms-v0")
    env.reset(seed=1)
    u = env.unwrapped
    agent = np.array([*u.agent_pos, u.agent_dir, 0, 0, 0], dtype=np.int64)
    assert full_state(env) == agent.tobytes() + u.grid.encode().tobytes() + u.mission.encode()


def test_the_same_grid_with_another_mission_is_another_layout():
    env = make_env("BabyAI-GoToRedBlueBall-v0")
    env.reset(seed=0)
    u = env.unwrapped
    before = full_state(env)
    u.mission = "go to the blue ball" if "red" in u.mission else "go to the red ball"
    assert full_state(env) != before
