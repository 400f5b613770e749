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


@pytest.mark.slow
@pytest.mark.parametrize("env_id", FEW)
def test_the_expert_demonstrates_them_with_noise(env_id):
    found, meta = generate(env_id, 10, seed=0, noise=0.3)
    assert meta["expert_success_rate"] == 1.0, meta
    assert found.episodes == 10


def box_in(u) -> tuple[int, int]:
    return next(
        (x, y)
        for x in range(u.grid.width)
        for y in range(u.grid.height)
        if (obj := u.grid.get(x, y)) is not None and obj.type == "box"
    )


def played_until_seen(env, box_at: tuple[int, int] | None) -> tuple[list[int], int, float]:
    """The expert's episode from a just-reset ``env`` (its box moved to ``box_at`` first): its
    actions, the step at which the agent first saw the box (minigrid's own ``agent_sees``: in
    view, not behind a wall or a closed door), and its reward."""
    u = env.unwrapped
    if box_at is not None:
        box = u.grid.get(*box_in(u))
        u.grid.set(*box_in(u), None)
        u.grid.set(*box_at, box)
        box.cur_pos = box_at
    teacher = Following(told(env), bot=Unboxing)
    obs, actions, seen_at, done, reward = None, [], None, False, 0.0
    while not done:
        if seen_at is None and u.agent_sees(*box_in(u)):
            seen_at = len(actions)
        plan = teacher.label(env, obs)
        actions.append(plan[0])
        obs, reward, terminated, truncated, _ = env.step(plan[0])
        done = terminated or truncated
        if not done:
            teacher.moved(plan, plan[0], env)
        if not any(o is not None and o.type == "box" for o in u.grid.grid):
            break  # opened
    return actions, seen_at, reward


def test_where_the_box_lies_changes_nothing_until_the_agent_has_seen_it():
    """It acts on what the agent has seen: the same layout with the box put elsewhere out of
    view gets the same actions until the agent sees the box, in one layout or the other."""
    env_id, compared = "MiniGrid-ObstructedMaze-1Dlh-v0", 0
    env = make_env(env_id, checked=False)
    for env_seed in range(2**32, 2**32 + 40):
        env.reset(seed=env_seed)
        u = env.unwrapped
        if u.agent_sees(*box_in(u)):
            continue
        room = u.room_from_pos(*u.agent_pos)  # the key must stay on this side of its door
        unseen = [
            (x, y)
            for x in range(u.grid.width)
            for y in range(u.grid.height)
            if u.grid.get(x, y) is None
            and not u.in_view(x, y)
            and u.room_from_pos(x, y) is room
            and not any(
                u.grid.get(*c) is not None and u.grid.get(*c).type == "door"
                for c in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))
            )
        ]
        bx, by = box_in(u)
        elsewhere = max(unseen, key=lambda c: abs(c[0] - bx) + abs(c[1] - by))
        first, seen_first, _ = played_until_seen(env, None)
        env.reset(seed=env_seed)
        second, seen_second, _ = played_until_seen(env, elsewhere)
        until = min(seen_first, seen_second)
        assert until > 0 and first[:until] == second[:until]
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize("env_id", FEW[:2])
def test_it_opens_the_box_and_its_plan_gets_there(env_id):
    for env_seed in range(2**32, 2**32 + 10):
        env = make_env(env_id, checked=False)
        env.reset(seed=env_seed)
        length = expert_length(env)
        teacher, u = Following(told(env), bot=Unboxing), env.unwrapped
        obs, opened, steps, done, reward = None, 0, 0, False, 0.0
        while not done:
            plan = teacher.label(env, obs)
            box = u.grid.get(*u.front_pos)
            opened += plan[0] == TOGGLE and box is not None and box.type == "box"
            obs, reward, terminated, truncated, _ = env.step(plan[0])
            done = terminated or truncated
            if not done:
                teacher.moved(plan, plan[0], env)
            steps += 1
        assert reward > 0 and steps == length and opened == 1


@pytest.mark.slow
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
