"""The tasks beyond reaching a goal: missions in words (MiniGrid's instruction tasks and
BabyAI's levels), demonstrated by minigrid's BabyAIBot, read by the policy as word tokens;
checked on the real environments."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from minigrid.core.world_object import Ball
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.core.verifier import ObjDesc, PickupInstr

from conftest import tiny, trained_looking
from core.dit import model_for
from core.evaluate import on_test_episodes
from core.rollout import dagger_visits, play_episodes
from core.tokens import mission_words
from core.trainer import Trainer
from data import blocks, bot, envs, teachers
from data.demos import DONE, for_data, generate
from data.envs import (
    INSTRUCTED,
    by_family,
    family_of,
    instructed,
    make_env,
    supported_env_ids,
)
from data.errors import BadInput
from data.missions import VOCABULARY, mission_tokens
from data.teachers import told

# One id of each MiniGrid family with a mission in words, and BabyAI levels of each kind
# (go to, pick up, put next to, open, unlock, a maze, a sequence).
TASKS = [
    *(next(i for i in supported_env_ids() if family_of(i) == f) for f in INSTRUCTED),
    "BabyAI-GoToRedBallGrey-v0",
    "BabyAI-GoToLocal-v0",
    "BabyAI-PickupLoc-v0",
    "BabyAI-PutNextLocal-v0",
    "BabyAI-OpenDoorColor-v0",
    "BabyAI-UnlockLocal-v0",
    "BabyAI-GoToObjMazeS4-v0",
    "BabyAI-GoToSeqS5R2-v0",
]


@pytest.mark.parametrize("env_id", TASKS)
def test_the_bot_demonstrates_every_family_with_its_mission(env_id):
    demos, meta = generate(env_id, 3, seed=0, noise=0.3)
    assert meta["expert"] == "explorer" and meta["expert_success_rate"] == 1.0, meta
    assert demos.episodes == 3 and meta["expert_failures"] == []
    words = mission_words(tiny(env_id))
    assert words and demos.mission[:, :words].any(axis=1).all(), "each episode's mission"
    assert not demos.mission[:, words:].any(), "no mission runs past the task's word count"


def test_an_episode_the_bot_fails_is_left_out_and_counted(monkeypatch):
    monkeypatch.setattr(bot, "MOST_SEARCHES", 2)  # the bot gives up on most mazes
    demos, meta = generate("BabyAI-GoToObjMazeS4-v0", 6, seed=0)
    failed = meta["expert_failures"]
    assert failed and demos.episodes + len(failed) == 6
    assert not set(failed) & set(demos.env_seed.tolist())
    assert meta["expert_success_rate"] == pytest.approx(1 - len(failed) / 6)
    monkeypatch.setattr(bot, "MOST_SEARCHES", 0)
    with pytest.raises(BadInput, match="failed every one of 2 episodes"):
        generate("BabyAI-GoToObjMazeS4-v0", 2, seed=0)


class Wanderer:
    """Random moves from its own generator: it strays from the bot's plans all the time."""

    deterministic = False

    def __init__(self, env_id: str, seed: int):
        self.config = tiny(env_id)
        self.rng = np.random.default_rng(seed)

    def plan(self, images, directions, past=None, missions=None):
        return self.rng.integers(0, 3, size=(len(images), 2))


@pytest.mark.slow  # over a second: the fast tier stays under 30 s
def test_the_bots_labels_are_what_it_would_do_from_each_state(monkeypatch):
    """DAgger's labels reuse the rest of a plan the policy followed; they are exactly the
    labels a fresh look ahead from every state gives."""
    env_id = "BabyAI-GoToRedBallGrey-v0"
    reused = dagger_visits(Wanderer(env_id, 0), env_id, range(2))

    label = bot.Following.label

    def fresh(self, env, obs):
        self.ahead = None
        return label(self, env, obs)

    monkeypatch.setattr(bot.Following, "label", fresh)
    looked = dagger_visits(Wanderer(env_id, 0), env_id, range(2))
    assert len(looked) == len(reused) > 20
    for a, b in zip(reused, looked, strict=True):
        assert a.plan == b.plan and a.executed == b.executed


@pytest.mark.slow  # over a second: the fast tier stays under 30 s
def test_dagger_looks_as_far_ahead_as_the_policy_plans():
    """The bot's plans for DAgger are played out to the policy's horizon, not the
    demonstrations' longest: the same first actions, nothing after."""
    env_id = "BabyAI-GoToRedBallGrey-v0"
    far = dagger_visits(Wanderer(env_id, 0), env_id, range(2))
    near = dagger_visits(Wanderer(env_id, 0), env_id, range(2), look_ahead=4)
    assert len(far) == len(near) > 10
    for a, b in zip(far, near, strict=True):
        assert b.plan[:4] == a.plan[:4] and set(b.plan[4:]) == {DONE}
    assert any(set(a.plan[4:]) != {DONE} for a in far)  # the longer ones do look further


@pytest.mark.slow  # processes of its own
def test_dagger_labels_by_two_processes_are_one_processs(monkeypatch):
    """Relabelling across processes (blocks of episodes, each replayed from its seed and
    actions) adds the training rows one process adds, byte for byte, and says how far it is."""
    monkeypatch.setattr(teachers, "LABEL_BLOCK", 2)  # 5 episodes: 3 blocks
    monkeypatch.setattr(blocks, "PROGRESS_EVERY", 0.0)  # a line after every block
    env_id = "BabyAI-GoToRedBallGrey-v0"
    config = tiny(env_id, **{"diffusion.temperature": 1.0})  # long, varied episodes
    demos, threads, said, added = for_data(config.data), torch.get_num_threads(), [], {}
    try:
        for jobs in (1, 2):
            torch.set_num_threads(jobs)  # relabelling uses as many processes
            trainer = Trainer(config, demos, log=said.append)
            trainer.relabel(5)
            added[jobs] = trainer.train_set.tail(trainer.demo_samples)
    finally:
        torch.set_num_threads(threads)
    assert len(added[1]["actions"]) > 20
    for name, rows in added[1].items():
        assert torch.equal(rows, added[2][name]), name
    labelled = [line for line in said if "episodes labelled" in line]
    assert len(labelled) == 6 and labelled[-1].startswith(f"relabelling {env_id}: 5/5")


def test_film_lets_the_mission_change_every_view_cell_and_starts_as_none():
    config = tiny("BabyAI-GoToRedBallGrey-v0", **{"model.film": True})
    torch.manual_seed(0)
    model = model_for(config)
    image = torch.randint(0, 3, (2, 7, 7, 3))
    direction = torch.tensor([0, 1])
    words = mission_words(config)
    red, blue = (
        torch.tensor([mission_tokens(f"go to the {c} ball", words)] * 2) for c in ("red", "blue")
    )
    cells = model.encode(image, direction, mission=red)[:, words:]  # the 49 view tokens
    assert torch.equal(cells, model.state(image, direction))  # untrained: no modulation yet
    torch.nn.init.normal_(model.film.weight, std=0.1)
    cells = model.encode(image, direction, mission=red)[:, words:]
    elsewhere = model.encode(image, direction, mission=blue)[:, words:]
    assert (cells - elsewhere).abs().amax(dim=-1).min() > 0  # every cell of both views
    assert not hasattr(model_for(tiny("BabyAI-GoToRedBallGrey-v0")), "film")  # off by default


def test_every_supported_task_has_words_the_vocabulary_knows():
    for family, (_, env_ids) in by_family().items():
        for env_id in env_ids if family in (*INSTRUCTED,) else env_ids[::8]:
            if not instructed(env_id):
                continue
            env = make_env(env_id)
            for seed in range(3):
                env.reset(seed=2**32 + seed)
                tokens = mission_tokens(env.unwrapped.mission, mission_words(tiny(env_id)))
                assert tokens.any(), env_id


def test_locked_room_is_reached_as_any_goal_and_its_mission_is_read_whole():
    env_id = "MiniGrid-LockedRoom-v0"
    assert not instructed(env_id) and teachers.expert_for(env_id, "auto") == "shortest"
    demos, meta = generate(env_id, 4, seed=0, noise=0.3)
    assert meta["expert_success_rate"] == 1.0
    words = mission_words(tiny(env_id))
    env = make_env(env_id)
    for env_seed, stored in zip(demos.env_seed, demos.mission, strict=True):
        env.reset(seed=int(env_seed))
        said = env.unwrapped.mission  # "get the red key from the blue room, unlock ..."
        assert np.array_equal(stored[:words], mission_tokens(said, words)), "every word"
        assert stored[words - 1] == VOCABULARY.index("goal") and not stored[words:].any()
    assert len({bytes(m) for m in demos.mission}) > 1, "the mission varies"


def test_a_word_outside_the_vocabulary_is_bad_input():
    with pytest.raises(BadInput, match="'teleport'"):
        mission_tokens("teleport to the red ball", 16)
    with pytest.raises(BadInput, match="has 5 words, more than the 4"):
        mission_tokens("go to the red ball", 4)
    assert mission_tokens("Go to the RED ball.", 6)[-1] == VOCABULARY.index("<pad>")


def test_the_policy_reads_the_mission_and_a_blind_one_does_not():
    env_id = "BabyAI-GoToRedBlueBall-v0"
    red = torch.from_numpy(mission_tokens("go to the red ball", 16))[None]
    blue = torch.from_numpy(mission_tokens("go to the blue ball", 16))[None]
    image = torch.zeros((1, 7, 7, 3), dtype=torch.uint8)
    direction, actions = torch.zeros(1, dtype=torch.long), torch.full((1, 4), 7)
    t = torch.ones(1)
    reads = trained_looking(model_for(tiny(env_id))).eval()
    assert not torch.allclose(
        reads(image, direction, actions, t, mission=red),
        reads(image, direction, actions, t, mission=blue),
    )
    blind = model_for(tiny(env_id, **{"model.mission": False}))
    assert not hasattr(blind, "mission") and blind.mission_words == 0
    reach = model_for(tiny("MiniGrid-DoorKey-5x5-v0"))
    assert reach.mission_words == 0, "a mission that never varies is not read"


def test_the_bot_is_told_the_instruction_of_a_minigrid_task():
    env = make_env("MiniGrid-PutNear-6x6-N2-v0")
    env.reset(seed=3)
    u = told(env).unwrapped
    assert u.instrs.surface(u).replace("next to", "near") in u.mission.replace("next to", "near")


class MissionRecorder(Wanderer):
    """Records the missions each plan was asked with."""

    def __init__(self, env_id: str, seed: int):
        super().__init__(env_id, seed)
        self.missions: list = []

    def plan(self, images, directions, past=None, missions=None):
        self.missions.append(missions)
        return super().plan(images, directions, past, missions)


def test_rollouts_hand_the_policy_each_episodes_mission():
    env_id = "MiniGrid-Fetch-5x5-N2-v0"
    policy = MissionRecorder(env_id, 0)
    runs = play_episodes(policy, env_id, range(6))
    env = make_env(env_id)
    expected = []
    for seed in range(6):
        env.reset(seed=seed)
        expected.append(mission_tokens(env.unwrapped.mission, mission_words(policy.config)))
    first = policy.missions[0]
    assert first.shape == (6, 16) and np.array_equal(first, np.stack(expected))
    assert len({tuple(m) for m in first}) > 1, "the episodes' missions differ"
    assert len(runs) == 6
    blind = MissionRecorder(env_id, 0)
    blind.config = tiny(env_id, **{"model.mission": False})
    play_episodes(blind, env_id, range(2))
    assert all(m is None for m in blind.missions), "a blind policy is handed no mission"


class PickOne(RoomGridLevel):
    """A room of 3x3 cells: the agent in the middle facing up, a red ball on its left and a
    blue ball on its right; the mission names the one to pick up, and picking up the other
    fails the episode (strict). Only the words say which: blind to them, a policy can be
    right on one colour's missions only."""

    def __init__(self, **kwargs):
        super().__init__(num_rows=1, num_cols=1, room_size=5, **kwargs)

    def gen_mission(self):
        self.agent_pos, self.agent_dir = np.array((2, 2)), 3
        balls = [Ball("red"), Ball("blue")]
        self.put_obj(balls[0], 1, 2)
        self.put_obj(balls[1], 3, 2)
        self.instrs = PickupInstr(ObjDesc("ball", self._rand_elem(balls).color), strict=True)


@pytest.fixture
def pick_one():
    env_id = "BabyAI-PickOneForTests-v0"
    gym.register(env_id, entry_point=PickOne)
    envs.supported_env_ids.cache_clear()
    yield env_id
    del gym.registry[env_id]
    envs.supported_env_ids.cache_clear()


@pytest.mark.slow  # two trainings of a few hundred steps
def test_a_policy_blind_to_the_mission_fails_where_the_one_reading_it_succeeds(pick_one):
    success = {}
    for reads in (True, False):
        config = tiny(
            pick_one,
            **{
                "data.episodes": 40,
                "train.iters": 2,
                "train.steps_per_iter": 100,
                "train.lr": 3e-3,
                "train.dagger_every": 0,
                "model.mission": reads,
            },
        )
        trainer = Trainer(config, for_data(config.data))
        for _ in range(config.train.iters):
            trainer.train_iteration()
        success[reads] = on_test_episodes(trainer.policy, 40, config.data)["test/success"]
    assert success[True] >= 0.95
    # Blind, a (greedy) policy makes one choice: right on about half the missions.
    assert success[False] <= 0.75
