"""Memory (``model.history``): the steps before each observation, in the data, in the model,
in rollouts and in DAgger's relabelling, checked against real MiniGrid episodes."""

import numpy as np
import torch

from conftest import batch, tiny, trained_looking
from core.chunks import Chunks, earlier_rows
from core.config import ModelConfig
from core.dit import DiT
from core.policy import Policy
from core.rollout import play_episodes
from core.tokens import NO_STEP, Past
from core.trainer import Trainer
from data.demos import for_data, generate
from data.envs import make_env

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def test_earlier_rows_stay_in_their_episode_in_any_row_order():
    # Two episodes played side by side, rows interleaved; episode 1 has no row for step 2.
    episode = np.array([0, 1, 0, 1, 0, 1, 0])
    step = np.array([0, 0, 1, 1, 2, 3, 3])
    rows = earlier_rows(episode, step, 3)
    assert rows.tolist() == [
        [-1, -1, -1],
        [-1, -1, -1],
        [0, -1, -1],
        [1, -1, -1],
        [2, 0, -1],
        [-1, 3, 1],  # step 2 of episode 1 has no row: not remembered, never another episode's
        [4, 2, 0],
    ]
    assert earlier_rows(episode, step, 0).shape == (7, 0)


def replay(env_id: str, env_seed: int, actions) -> list[dict]:
    """The observations an episode shows when these actions are taken from its start."""
    env = make_env(env_id)
    obs, _ = env.reset(seed=env_seed)
    seen = [obs]
    for action in actions[:-1]:
        obs, *_ = env.step(int(action))
        seen.append(obs)
    return seen


def test_demonstrations_record_the_actions_taken_and_chunks_remember_them():
    """With noise the action taken is often not the expert's: replaying the recorded ones
    shows each row's view, and each row's past is the rows before it in its episode."""
    demos, _ = generate(ENV_ID, 4, seed=1, noise=0.5)
    assert np.any(demos.executed != demos.action), "noise took other actions"
    chunks = Chunks.from_demos(
        demos, horizon=4, history=2, map_size=0, words=0, device=torch.device("cpu")
    )
    for e in range(demos.episodes):
        first, stop = demos.episode_start[e], demos.episode_start[e + 1]
        views = replay(ENV_ID, int(demos.env_seed[e]), demos.executed[first:stop])
        for k, obs in enumerate(views):
            assert np.array_equal(demos.image[first + k], obs["image"])
        past = chunks.past(torch.arange(first, stop))
        for k in range(stop - first):
            for age in range(2):
                if k - 1 - age < 0:
                    assert past.action[k, age] == NO_STEP
                else:
                    assert past.action[k, age] == demos.executed[first + k - 1 - age]
                    assert np.array_equal(past.image[k, age], views[k - 1 - age]["image"])


def test_the_model_reads_its_past_and_an_empty_past_is_the_episode_start():
    config = ModelConfig(hidden=32, depth=2, heads=4, horizon=8, history=3)
    model = trained_looking(DiT(config)).eval()
    image, direction, actions = batch()
    t = torch.full((5,), 0.5)
    other_image, _, _ = batch(seed=1)
    start = Past.empty(5, 3, 0, image.device)
    past = Past(
        other_image[:, None].repeat(1, 3, 1, 1, 1),
        direction[:, None].repeat(1, 3),
        actions[:, :3],
        start.map,
    )
    base = model(image, direction, actions, t, past)
    assert torch.equal(
        model(image, direction, actions, t), model(image, direction, actions, t, start)
    )
    assert not torch.allclose(base, model(image, direction, actions, t, start))
    changed = Past(past.image.flip(0), past.direction, past.action, past.map)
    assert not torch.allclose(base, model(image, direction, actions, t, changed))


class Recorder(Policy):
    """Random moves; records every past it is handed, by episode."""

    deterministic = False
    config = tiny(ENV_ID, **{"model.history": 3})

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.calls = []

    def plan(self, images, directions, past=None, missions=None):
        self.calls.append((images.copy(), past))
        return self.rng.integers(0, 3, size=(len(images), 2))


def test_rollouts_hand_the_policy_the_steps_it_took():
    recorder = Recorder()
    runs = play_episodes(recorder, ENV_ID, [0], record=True)
    taken = [visit.executed for visit in runs[0].visits]
    assert len(taken) == runs[0].length
    views = replay(ENV_ID, 0, taken)
    step = 0
    for images, (past_image, past_direction, past_action, _) in recorder.calls:
        assert np.array_equal(images[0], views[step]["image"])
        for age in range(3):
            if step - 1 - age < 0:
                assert past_action[0, age] == NO_STEP
            else:
                assert past_action[0, age] == taken[step - 1 - age]
                assert np.array_equal(past_image[0, age], views[step - 1 - age]["image"])
                assert past_direction[0, age] == views[step - 1 - age]["direction"]
        step += 2


def test_relabelled_rows_remember_their_own_episode():
    """DAgger plays several episodes at once, their steps interleaved; following each
    relabelled row to the row that remembers it as its last step, and taking the recorded
    actions from the start, replays one of the episodes played, view for view."""
    config = tiny(ENV_ID, **{"model.history": 2, "diffusion.temperature": 1.0})
    trainer = Trainer(config, for_data(config.data))
    before = len(trainer.train_set)
    seeds = trainer.train_seeds[:4]
    trainer.relabel(4)
    chunks = trainer.train_set
    rows = range(before, len(chunks))
    last = chunks.previous[:, 0].tolist()
    assert all(last[row] == -1 or last[row] >= before for row in rows), "never a demo's row"
    after = {last[row]: row for row in rows if last[row] >= 0}
    starts = [row for row in rows if last[row] == -1]
    assert len(starts) == len(seeds)
    played = set()
    for row in starts:
        chain = [row]
        while chain[-1] in after:
            chain.append(after[chain[-1]])
        taken = chunks.executed[chain].tolist()
        first = chunks.image[row].numpy()
        seed = next(
            int(s)
            for s in seeds
            if np.array_equal(replay(ENV_ID, int(s), [0])[0]["image"], first)
            and int(s) not in played
        )
        played.add(seed)
        views = replay(ENV_ID, seed, taken)
        for k, r in enumerate(chain):
            assert np.array_equal(chunks.image[r].numpy(), views[k]["image"])
            if k >= 2:
                assert chunks.previous[r].tolist() == [chain[k - 1], chain[k - 2]]
    assert len(played) == len(seeds)


class Wiggler(Policy):
    """Greedy: left then right, whatever it sees: the state repeats every plan."""

    deterministic = True
    config = tiny("MiniGrid-Empty-8x8-v0")

    def __init__(self):
        pass

    def plan(self, images, directions, past=None, missions=None):
        return np.array([[0, 1]] * len(images))


class RememberingWiggler(Wiggler):
    config = tiny("MiniGrid-Empty-8x8-v0", **{"model.history": 2})


def test_a_loop_is_the_state_and_the_remembered_steps_repeating():
    """Without memory the second plan starts from the first one's state: a loop at once. With
    memory it remembers the wiggle, which it did not the first time; only the third plan
    repeats everything the second one read."""
    assert play_episodes(Wiggler(), "MiniGrid-Empty-8x8-v0", [0])[0].length == 2
    assert play_episodes(RememberingWiggler(), "MiniGrid-Empty-8x8-v0", [0])[0].length == 4
