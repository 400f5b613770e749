"""The explorer expert, on the real environments: it solves every supported one, and nothing
it does depends on a cell the agent has not seen."""

import copy

import pytest
from minigrid.core.constants import OBJECT_TO_IDX
from minigrid.core.world_object import Goal

from conftest import by_size, tiny
from core.trainer import Trainer
from data.demos import FORMAT_VERSION, cached, for_data
from data.envs import make_env, reach_the_goal_ids
from data.expert import shortest_plan
from data.explorer import Explorer


def explore(env, obs, steps: int = 10_000):
    """Act on the explorer's plans from ``obs``: (actions taken, success)."""
    explorer, actions = Explorer(env), []
    for _ in range(steps):
        explorer.observe(env, obs["image"])
        plan = explorer.plan(env)
        assert plan, f"no plan after {actions}"
        obs, reward, terminated, truncated, _ = env.step(plan[0])
        actions.append(plan[0])
        if terminated or truncated:
            return actions, terminated and reward > 0
    return actions, False


@pytest.mark.parametrize("env_id", by_size(reach_the_goal_ids()))
def test_the_explorer_solves_every_supported_environment(env_id):
    env = make_env(env_id)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        shortest = len(shortest_plan(env))
        actions, success = explore(env, obs)
        assert success, f"{env_id} seed {seed}: no success after {len(actions)} actions"
        assert len(actions) >= shortest, "never shorter than the shortest path"


def knows(explorer: Explorer, cell: tuple[int, int]) -> bool:
    return explorer.known.cell(*cell)[0] != OBJECT_TO_IDX["unseen"]


def test_what_the_agent_has_not_seen_changes_nothing():
    """Move FourRooms' goal to another cell the agent has not seen: until either goal comes
    into view, the explorer acts exactly the same."""
    env = make_env("MiniGrid-FourRooms-v0")
    checked = 0
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        u = env.unwrapped
        explorer = Explorer(env)
        explorer.observe(env, obs["image"])
        goal = next(
            (x, y)
            for x in range(u.width)
            for y in range(u.height)
            if getattr(u.grid.get(x, y), "type", None) == "goal"
        )
        empty = [
            (x, y)
            for x in range(1, u.width - 1)
            for y in range(1, u.height - 1)
            if u.grid.get(x, y) is None
            and not knows(explorer, (x, y))
            and (x, y) != tuple(u.agent_pos)
        ]
        if knows(explorer, goal) or not empty:
            continue
        other = copy.deepcopy(env)
        other.unwrapped.grid.set(*goal, None)
        other.unwrapped.grid.set(*empty[len(empty) // 2], Goal())
        moved = other.unwrapped
        a, b = Explorer(env), Explorer(other)
        obs_a, obs_b = obs, moved.gen_obs()
        for step in range(60):
            a.observe(env, obs_a["image"])
            b.observe(other, obs_b["image"])
            sees_goal = any((e.known.cells[..., 0] == OBJECT_TO_IDX["goal"]).any() for e in (a, b))
            if sees_goal:
                break
            plan_a, plan_b = a.plan(env), b.plan(other)
            assert plan_a == plan_b, f"seed {seed} step {step}: the unseen goal mattered"
            obs_a, *_ = env.step(plan_a[0])
            obs_b, *_ = other.step(plan_b[0])
        checked += 1
    assert checked >= 10, "enough episodes start with the goal out of sight"


def test_explorer_demonstrations_follow_its_plans_and_have_their_own_cache_file(tmp_path):
    demos, meta, path = cached("MiniGrid-FourRooms-v0", 6, 0, tmp_path, 0.0, expert="explorer")
    assert path.name == f"MiniGrid-FourRooms-v0-n6-s0-p0-eexplorer-v{FORMAT_VERSION}.npz"
    assert meta["expert"] == "explorer" and meta["expert_success_rate"] == 1.0
    shortest, _, other = cached("MiniGrid-FourRooms-v0", 6, 0, tmp_path, 0.0)
    assert other != path and demos.samples > shortest.samples, "exploring takes longer"
    # Without noise each step executes the first action of its label; replay them for real.
    env = make_env("MiniGrid-FourRooms-v0")
    for e in range(demos.episodes):
        env.reset(seed=int(demos.env_seed[e]))
        rows = range(demos.episode_start[e], demos.episode_start[e + 1])
        for row in rows:
            _, reward, terminated, _, _ = env.step(int(demos.action[row]))
        assert terminated and reward > 0, f"episode {e} does not end on the goal"


def test_dagger_relabels_with_the_explorer(tmp_path):
    config = tiny(
        "MiniGrid-DoorKey-5x5-v0",
        **{
            "data.expert": "explorer",
            "train.dagger_every": 1,
            "train.dagger_episodes": 3,
            "train.iters": 2,
        },
    )
    trainer = Trainer(config, for_data(config.data, tmp_path))
    before = len(trainer.train_set)
    trainer.train_iteration()
    assert len(trainer.train_set) > before, "the explorer labelled the policy's own states"
