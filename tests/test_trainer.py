"""The trainer, checkpoints and batched rollouts, on real MiniGrid data."""

import os
import pickle

import numpy as np
import pytest
import torch

from conftest import tiny
from core.checkpoint import load_checkpoint, save_checkpoint
from core.chunks import Chunks
from core.config import DEFAULT
from core.device import pick_device
from core.evaluate import rollout
from core.lr_schedule import warmup_cosine
from core.policy import Policy, policy_from_checkpoint
from core.rollout import dagger_visits, play_episodes
from core.seed_runs import train_one
from core.trainer import Trainer
from data import blocks
from data.demos import DONE, for_data
from data.envs import episode_seeds
from data.errors import BadInput


@pytest.fixture(scope="module")
def demos():
    return for_data(tiny().data)


def test_chunks_hold_the_next_actions_padded_with_done(demos):
    chunks = Chunks.from_demos(
        demos, horizon=4, history=0, map_size=0, words=0, device=torch.device("cpu")
    )
    first, last = demos.episode_start[0], demos.episode_start[1]
    episode = demos.action[first:last].astype(np.int64)
    assert chunks.actions[first].tolist() == episode[:4].tolist()
    assert chunks.actions[last - 1].tolist() == [episode[-1], DONE, DONE, DONE]
    assert len(chunks) == demos.samples


def test_same_seed_same_loss_curve(demos):
    config = tiny(**{"train.eval_every": 100})
    curves = []
    for _ in range(2):
        trainer = Trainer(config, demos)
        curves.append([trainer.train_iteration() for _ in range(2)])
    for a, b in zip(*curves, strict=True):
        assert a["train/loss"] == b["train/loss"] and a["val/loss"] == b["val/loss"]
    other = Trainer(tiny(**{"train.seed": 1, "train.eval_every": 100}), demos)
    assert other.train_iteration()["train/loss"] != curves[0][0]["train/loss"]


def test_every_iteration_reports_the_design_metrics(demos):
    trainer = Trainer(tiny(**{"train.eval_every": 2, "train.iters": 2}), demos)
    first, second = trainer.train_iteration(), trainer.train_iteration()
    common = {"train/loss", "val/loss", "val/acc", "perf/samples_per_s"}
    assert common <= set(first) and "eval/success" not in first
    assert common | {"eval/success", "eval/return", "eval/len_ratio"} <= set(second)
    assert 0.0 <= second["eval/success"] <= 1.0


@pytest.mark.slow  # over a second each: the fast tier stays under 30 s
@pytest.mark.parametrize(
    "sets",
    [{}, {"model.dropout": 0.1}, {"model.history": 3}],
    ids=["plain", "dropout", "memory"],
)
def test_checkpoint_resumes_exactly(demos, tmp_path, sets):
    """Dropout draws from torch's global generator: a resume restores it too; with memory the
    relabelled rows keep the rows of their earlier steps."""
    config = tiny(
        **{
            "train.eval_every": 100,
            "train.iters": 3,
            "train.ema": 0.9,
            "train.dagger_every": 1,
            **sets,
        }
    )
    first = Trainer(config, demos)
    first.train_iteration()
    first.train_iteration()
    save_checkpoint(tmp_path / "checkpoint.pt", first.state_dict())
    previous = first.train_set.previous.clone()
    # The run that was saved goes on (before another Trainer draws from torch's global
    # generator); the resumed one must match it.
    expected = first.train_iteration()["train/loss"]
    resumed = Trainer(config, demos)
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    assert resumed.iteration == 2
    assert torch.equal(resumed.train_set.previous, previous)
    assert resumed.train_iteration()["train/loss"] == expected
    assert (tmp_path / "checkpoint.json").is_file()


def test_checkpoint_policy_plans_like_the_trainer(demos, tmp_path):
    trainer = Trainer(tiny(**{"train.ema": 0.5}), demos)
    trainer.train_iteration()
    save_checkpoint(tmp_path / "c.pt", trainer.state_dict())
    policy = policy_from_checkpoint(load_checkpoint(tmp_path / "c.pt"), torch.device("cpu"))
    image, direction = demos.image[:6], demos.direction[:6].astype(np.int64)
    live = Policy(trainer.eval_model, trainer.config, trainer.device)
    assert np.array_equal(policy.plan(image, direction), live.plan(image, direction))
    one = policy_from_checkpoint(
        load_checkpoint(tmp_path / "c.pt"), torch.device("cpu"), ["diffusion.exec_steps=1"]
    )
    assert one.plan(image, direction).shape == (6, 1), "plans as --set says"
    assert np.array_equal(one.plan(image, direction), live.plan(image, direction)[:, :1])


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format_version": 1, "model": Exploit()}))
    with pytest.raises(BadInput):
        load_checkpoint(path)
    assert not marker.exists()


def test_an_interrupted_checkpoint_write_keeps_the_old_file(demos, tmp_path):
    trainer = Trainer(tiny(), demos)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, trainer.state_dict())
    before = path.read_bytes()
    state = trainer.state_dict()
    state["metrics"] = {"unsaveable": lambda: None}  # torch.save fails half way
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises
        save_checkpoint(path, state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


class CountingPolicy(Policy):
    deterministic = True
    config = DEFAULT  # no memory

    def __init__(self, actions):
        self.calls, self.actions = [], actions

    def plan(self, images, directions, past=None, missions=None):
        self.calls.append(len(images))
        return np.array([self.actions] * len(images))


def test_rollouts_are_batched_and_loops_end_early():
    spinner = CountingPolicy([0, 0])  # always turn left: the state repeats after 4 turns
    metrics = rollout(spinner, "MiniGrid-Empty-8x8-v0", episodes=5, seed=0)
    assert spinner.calls[0] == 5, "one policy call serves every live episode"
    assert len(spinner.calls) <= 3, "a repeated state ends the episode, no 256-step timeout"
    assert metrics["eval/success"] == 0.0 and metrics["eval/return"] == 0.0


def test_rollout_scores_the_expert_like_plan():
    # Empty-8x8 has one fixed episode: 5 x forward, right, 5 x forward reaches the goal.
    walker = CountingPolicy([2] * 5 + [1] + [2] * 5)
    metrics = rollout(walker, "MiniGrid-Empty-8x8-v0", episodes=2, seed=0)
    assert metrics["eval/success"] == 1.0
    assert metrics["eval/len_ratio"] == 1.0
    assert metrics["eval/return"] == pytest.approx(1 - 0.9 * 11 / 256)


def test_warmup_cosine():
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.0)


def test_dagger_adds_expert_labels_for_the_policys_own_states(demos):
    config = tiny(**{"train.dagger_every": 1, "train.dagger_episodes": 3, "train.iters": 3})
    trainer = Trainer(config, demos)
    before = len(trainer.train_set)
    metrics = trainer.train_iteration()
    added = len(trainer.train_set) - before
    assert added > 0 and metrics["train/samples"] == len(trainer.train_set)
    # Each added label is the expert's plan from a state the policy reached: moves (the expert
    # never plans done), then done-padding from where the goal is reached to the horizon.
    new = trainer.train_set.actions[before:]
    assert ((new >= 0) & (new <= DONE)).all()
    for row in new.tolist():
        moves = row.index(DONE) if DONE in row else len(row)
        assert row[moves:] == [DONE] * (len(row) - moves), f"done before a move: {row}"
    short = [row for row in new.tolist() if DONE in row]
    assert short, "some states were within the horizon of the goal, so padding was checked"
    assert trainer.relabelled == 3
    for which in ("selection", "test"):
        assert set(trainer.train_seeds.tolist()).isdisjoint(
            episode_seeds(which, config.data.seed, 1000).tolist()
        ), f"relabelling plays training episodes, never {which} ones"


def test_device_choice_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    with pytest.raises(BadInput):
        pick_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"


class Wanderer(Policy):
    """Random moves from its own generator: it revisits states and strays from the expert."""

    deterministic = False
    config = DEFAULT  # no memory

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def plan(self, images, directions, past=None, missions=None):
        return self.rng.integers(0, 3, size=(len(images), 2))


def test_dagger_labels_are_the_experts_plans_with_far_fewer_searches(monkeypatch):
    """The plan cache (tails of plans the policy followed, states seen before) gives exactly
    the labels a search from every state gives."""
    import data.expert

    searches = []
    real = data.expert.shortest_plan

    def counted(env):
        searches.append(1)
        return real(env)

    monkeypatch.setattr(data.expert, "shortest_plan", counted)
    cached = dagger_visits(Wanderer(0), "MiniGrid-DoorKey-5x5-v0", range(6))
    with_cache = len(searches)

    import data.teachers

    class NoCache(data.expert.PlanCache):
        def plan(self, env, state):
            self.known.pop(state, None)
            return super().plan(env, state)

    monkeypatch.setattr(data.teachers, "PlanCache", NoCache)
    searches.clear()
    direct = dagger_visits(Wanderer(0), "MiniGrid-DoorKey-5x5-v0", range(6))
    assert len(direct) == len(cached) > 100
    for visit1, visit2 in zip(cached, direct, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(visit1, visit2, strict=True))
    assert with_cache < len(searches) / 2, (with_cache, len(searches))


def test_a_long_rollout_says_how_many_episodes_ended_and_at_most_how_long_is_left(
    monkeypatch, tmp_path
):
    said = []
    play_episodes(Wanderer(0), "MiniGrid-DoorKey-5x5-v0", range(3), log=said.append)
    assert said == []  # a quick rollout says nothing
    monkeypatch.setattr(blocks, "PROGRESS_EVERY", 0.0)  # a line after every step
    episodes = play_episodes(
        Wanderer(0), "MiniGrid-DoorKey-5x5-v0", range(3), log=said.append, what="test"
    )
    assert len(said) == max(e.length for e in episodes)
    assert said[0].startswith("test: 0/3 episodes ended") and "at most" in said[0]
    assert said[-1].startswith("test: 3/3 episodes ended") and said[-1].endswith("0.0 min left")
    # train names the iteration and the phase
    config = tiny(**{"train.iters": 1})
    lines = []
    train_one(config, for_data(config.data), tmp_path, log=lines.append)
    assert any(line.startswith("iter   1/1  test episodes of MiniGrid-Empty-5x5") for line in lines)


@pytest.mark.slow  # over a second: the fast tier stays under 30 s
def test_lazy_views_play_the_same_episodes(monkeypatch):
    """A rollout that makes the agent's view only where it plans gives exactly the episodes
    one that makes it at every step gives (a sampling policy, so the plans differ a lot)."""
    import core.rollout

    config = tiny("MiniGrid-DoorKey-5x5-v0", **{"diffusion.temperature": 1.0})
    trainer = Trainer(config, for_data(config.data))
    trainer.train_iteration()

    def episodes():
        runs = play_episodes(trainer.policy, config.data.env, range(8))
        return [(r.length, r.reward, r.success) for r in runs]

    lazy = episodes()
    monkeypatch.setattr(core.rollout, "observe_lazily", lambda env: None)
    assert episodes() == lazy and sum(length for length, _, _ in lazy) > 50
