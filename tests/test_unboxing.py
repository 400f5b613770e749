"""Keys hidden in boxes: the expert that opens the boxes the agent has seen and hands back to
minigrid's BabyAIBot (data/unboxing.py), on the real environments."""

import numpy as np
import pytest

from data.bot import Bot, Following
from data.demos import generate
from data.envs import make_env, supported_env_ids
from data.expert import TOGGLE
from data.teachers import bot_for, expert_length, label_episodes, teachers, told
from data.unboxing import Unboxing, hides_keys

FEW = ["MiniGrid-ObstructedMaze-1Dlh-v0", "MiniGrid-ObstructedMaze-1Dlhb-v0", "BabyAI-KeyInBox-v0"]


def test_the_tasks_with_hidden_keys_are_supported_and_served_by_this_expert():
    hidden = [i for i in supported_env_ids() if hides_keys(i)]
    assert set(FEW) <= set(hidden)
    assert all(bot_for(i) is Unboxing for i in hidden)
    # Where the key lies on the floor, minigrid's bot serves as it is.
    assert bot_for("MiniGrid-ObstructedMaze-1Dl-v0") is Bot
    assert bot_for("BabyAI-GoToLocal-v0") is Bot


@pytest.mark.parametrize("env_id", FEW)
def test_the_expert_demonstrates_them_with_noise(env_id):
    found, meta = generate(env_id, 10, seed=0, noise=0.3)
    assert meta["expert_success_rate"] == 1.0, meta
    assert found.episodes == 10


def boxes_seen(u, seen: set) -> None:
    """Add the boxes the agent sees now (minigrid's own ``agent_sees``: in its view, not hidden
    behind a wall or a closed door) to ``seen``."""
    for x in range(u.grid.width):
        for y in range(u.grid.height):
            obj = u.grid.get(x, y)
            if obj is not None and obj.type == "box" and u.agent_sees(x, y):
                seen.add((x, y))


@pytest.mark.parametrize("env_id", FEW[:2])
def test_it_opens_only_boxes_the_agent_has_seen_and_the_bots_plan_gets_there(env_id):
    opened = 0
    for env_seed in range(2**32, 2**32 + 10):
        env = make_env(env_id, checked=False)
        obs, _ = env.reset(seed=env_seed)
        length = expert_length(env)
        teacher, u = Following(told(env), bot=Unboxing), env.unwrapped
        seen, steps, done, reward = set(), 0, False, 0.0
        while not done:
            boxes_seen(u, seen)
            plan = teacher.label(env, obs)
            ahead = tuple(int(v) for v in u.front_pos)
            box = u.grid.get(*ahead)
            if plan[0] == TOGGLE and box is not None and box.type == "box":
                assert ahead in seen
                opened += 1
            obs, reward, terminated, truncated, _ = env.step(plan[0])
            done = terminated or truncated
            if not done:
                teacher.moved(plan, plan[0], env)
            steps += 1
        assert reward > 0 and steps == length
    assert opened >= 10  # every episode's key was in a box


@pytest.mark.parametrize("env_id", FEW)
def test_a_policy_that_strays_is_labelled_from_every_state_it_reaches(env_id):
    """DAgger's labels: the expert told of random actions (boxes opened early, keys dropped)
    still plans from where they lead, in most states."""
    rng = np.random.default_rng(0)
    played = [(2**32 + i, [int(a) for a in rng.integers(0, 6, 40)]) for i in range(5)]
    labels = label_episodes(env_id, "auto", played, look_ahead=8)
    plans = [plan for episode in labels for plan in episode]
    assert len(plans) == 200
    assert sum(plan is not None for plan in plans) >= 0.9 * len(plans)
    assert all(plan is None or 1 <= len(plan) <= 8 for plan in plans)


def test_the_bot_alone_cannot_and_this_expert_can():
    """Why the expert exists: on a key in a box minigrid's bot gives up at once."""
    env = make_env("BabyAI-KeyInBox-v0", checked=False)
    env.reset(seed=2**32 + 12)  # the bot asserts that no key exists
    assert Following(told(env)).stuck
    assert not teachers("auto", "BabyAI-KeyInBox-v0")(env).stuck
