"""The shortest-path expert, checked against the real MiniGrid environments."""

import copy
from collections import deque

import pytest
from minigrid.core.actions import Actions
from minigrid.core.world_object import Key, Wall

from conftest import by_size
from data.envs import (
    BABYAI,
    DODGING,
    FAMILIES,
    INSTRUCTED,
    MEMORY,
    NOT_SOLVED,
    family_of,
    make_env,
    reach_the_goal_ids,
    supported_env_ids,
)
from data.expert import shortest_plan

SEEDS = range(20)


@pytest.mark.parametrize("env_id", by_size(reach_the_goal_ids()))
def test_plan_reaches_the_goal(env_id):
    env = make_env(env_id)
    for seed in SEEDS:
        env.reset(seed=seed)
        plan = shortest_plan(env)
        for step, action in enumerate(plan):
            _, reward, terminated, truncated, _ = env.step(action)
            ended_early = (terminated or truncated) and step < len(plan) - 1
            assert not ended_early, (
                f"{env_id} seed {seed}: episode ended at step {step} ({Actions(action).name}) "
                f"of a {len(plan)}-step plan, reward {reward}"
            )
        assert terminated and reward > 0, (
            f"{env_id} seed {seed}: after step {len(plan) - 1} of the plan the episode has "
            f"terminated={terminated}, truncated={truncated}, reward={reward}"
        )


def test_every_family_is_supported_and_nothing_else():
    ids = supported_env_ids()
    for family in (*FAMILIES, DODGING, MEMORY, *INSTRUCTED, BABYAI):
        assert any(family_of(i) == family for i in ids), f"no {family} id supported"
    assert all(family_of(i) is not None for i in ids)
    assert not set(NOT_SOLVED) & set(ids), "ids the expert does not solve are left out"
    assert not [i for i in ids if "Playground" in i or "WFC" in i]
    assert family_of("MiniGrid-UnlockPickup-v0") == "UnlockPickup", "the longest name wins"
    assert family_of("MiniGrid-Unlock-v0") == "Unlock"


@pytest.mark.parametrize("size", [5, 6, 8, 16], ids=lambda size: f"Empty-{size}x{size}")
def test_empty_room_plan_has_the_known_length(size):
    # The agent starts in the top-left corner facing right and the goal is in the bottom-right
    # corner: (size - 3) steps right, one turn, (size - 3) steps down.
    env = make_env(f"MiniGrid-Empty-{size}x{size}-v0")
    env.reset(seed=0)
    assert len(shortest_plan(env)) == 2 * (size - 3) + 1


def _state_key(env):
    carried = env.carrying
    return (
        tuple(int(v) for v in env.agent_pos),
        int(env.agent_dir),
        env.grid.encode().tobytes(),
        None if carried is None else (carried.type, carried.color),
    )


def _fewest_actions_by_brute_force(env) -> int | None:
    """Breadth-first search through copies of the real environment with all 7 actions (drop,
    done and closing doors included), so it shares no modelling with the expert."""
    start = copy.deepcopy(env.unwrapped)
    seen = {_state_key(start)}
    queue = deque([(start, 0)])
    while queue:
        state, depth = queue.popleft()
        for action in Actions:
            following = copy.deepcopy(state)
            _, reward, terminated, _, _ = following.step(action)
            if terminated:
                if reward > 0:
                    return depth + 1
                continue  # lava
            key = _state_key(following)
            if key not in seen:
                seen.add(key)
                queue.append((following, depth + 1))
    return None


@pytest.mark.parametrize(
    ("env_id", "seed"),
    [
        ("MiniGrid-Empty-Random-5x5-v0", 0),
        ("MiniGrid-Empty-Random-5x5-v0", 2),
        ("MiniGrid-LavaGapS5-v0", 1),
        ("MiniGrid-DoorKey-5x5-v0", 0),
        ("MiniGrid-DoorKey-5x5-v0", 1),
        ("MiniGrid-DoorKey-5x5-v0", 2),
        ("MiniGrid-MultiRoom-N2-S4-v0", 1),
    ],
    ids=lambda value: str(value).removeprefix("MiniGrid-").removesuffix("-v0"),
)
def test_plan_is_as_short_as_brute_force_finds(env_id, seed):
    env = make_env(env_id)
    env.reset(seed=seed)
    assert len(shortest_plan(env)) == _fewest_actions_by_brute_force(env)


def _snapshot(env):
    inner = env.unwrapped
    return (_state_key(inner), inner.step_count, repr(inner.np_random.bit_generator.state))


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-8x8-v0", "MiniGrid-MultiRoom-N6-v0"])
def test_planning_leaves_the_env_unchanged(env_id):
    env = make_env(env_id)
    for seed in range(3):
        env.reset(seed=seed)
        before = _snapshot(env)
        shortest_plan(env)
        assert _snapshot(env) == before


def _cells(env, object_type):
    grid = env.unwrapped.grid
    cells = [(x, y) for y in range(grid.height) for x in range(grid.width)]
    found = [cell for cell in cells if getattr(grid.get(*cell), "type", None) == object_type]
    agent = tuple(int(v) for v in env.unwrapped.agent_pos)
    return [cell for cell in found if cell != agent]


def test_locked_door_needs_a_key_of_its_colour():
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    [key_cell] = _cells(env, "key")
    env.unwrapped.grid.set(*key_cell, Key("red"))  # the door is yellow
    with pytest.raises(RuntimeError):
        shortest_plan(env)


def test_walled_off_goal_has_no_plan():
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    # The goal is at (3, 3); its open neighbours are (2, 3) and (3, 2).
    env.unwrapped.grid.set(2, 3, Wall())
    env.unwrapped.grid.set(3, 2, Wall())
    with pytest.raises(RuntimeError):
        shortest_plan(env)


def test_more_than_one_pickable_object_is_refused():
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    env.unwrapped.grid.set(*_cells(env, None)[0], Key("red"))
    with pytest.raises(ValueError):
        shortest_plan(env)
