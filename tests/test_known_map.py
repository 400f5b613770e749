"""The map of what the agent has seen (``model.map``, data/known_map.py): built from real
MiniGrid views, the same in demonstrations, rollouts and DAgger, and read by the model."""

import numpy as np
import pytest
import torch
from test_view import wander

from conftest import batch, tiny, trained_looking
from core.chunks import Chunks
from core.config import DEFAULT, ModelConfig, apply_sets, validate
from core.dit import DiT
from core.memory import Memory
from core.policy import Policy
from core.rollout import play_episodes
from core.tokens import Past
from core.trainer import Trainer
from data.demos import for_data, generate
from data.envs import make_env
from data.errors import BadInput
from data.known_map import EMPTY, UNSEEN, KnownMap, episode_maps

ENVS = ["MiniGrid-FourRooms-v0", "MiniGrid-DoorKey-8x8-v0", "MiniGrid-LavaCrossingS9N3-v0"]
AGENT = (3, 6)  # the agent's cell in its view: it shows what the agent carries


def shown_cells(u, image) -> dict:
    """The grid cells the view ``image`` shows, by MiniGrid's own geometry."""
    top_x, top_y, bottom_x, bottom_y = u.get_view_exts()
    shown = {}
    for x in range(top_x, bottom_x):
        for y in range(top_y, bottom_y):
            at = u.relative_coords(x, y)
            if at is not None and at != AGENT and image[at][0] != UNSEEN:
                shown[(x, y)] = image[at].copy()
    return shown


@pytest.mark.parametrize("env_id", ENVS)
def test_the_map_holds_what_the_views_showed_and_nothing_else(env_id):
    """At every step of wandering episodes (doors opened, keys carried, every direction):
    the square around the agent agrees with its view wherever the view shows a cell; every
    cell on the map is that cell as a view last showed it; a cell no view showed is unseen,
    but for the floor the agent stood on."""
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    size, centre = 15, 7
    for seed in range(3):
        known, shown, stood = None, {}, set()
        for u in wander(env, seed, 80, rng):
            known = known or KnownMap(u.grid.width, size)
            image = u.gen_obs()["image"]
            known.observe(image, u.agent_dir, u.agent_pos)
            shown.update(shown_cells(u, image))
            stood.add(tuple(int(v) for v in u.agent_pos))
            square = known.around(u.agent_dir, u.agent_pos)
            for i, j in zip(*np.nonzero(image[..., 0] != UNSEEN), strict=True):
                if (i, j) != AGENT:
                    np.testing.assert_array_equal(
                        square[centre + i - 3, centre + j - 6], image[i, j]
                    )
        for x in range(-7, u.grid.width + 7):
            for y in range(-7, u.grid.height + 7):
                cell = known.cell(x, y)
                if (x, y) in shown:
                    np.testing.assert_array_equal(cell, shown[(x, y)])
                elif (x, y) in stood:
                    assert cell[0] == EMPTY
                else:
                    assert cell[0] == UNSEEN, (x, y)


class Recorder(Policy):
    """Random moves; records the map squares it is handed."""

    deterministic = False
    config = tiny("MiniGrid-FourRooms-v0", **{"model.map": 9})

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.squares = []

    def plan(self, images, directions, past=None, missions=None):
        self.squares.append(past[3][0].copy())
        return self.rng.integers(0, 3, size=(len(images), 1))


def test_demonstrations_rollouts_and_dagger_build_the_same_map():
    """The map squares a policy is handed in a rollout, those DAgger stores for the states it
    relabels, and those computed from a recorded episode (its views and the agent's cells)
    are one and the same."""
    recorder = Recorder()
    runs = play_episodes(recorder, "MiniGrid-FourRooms-v0", [5], record=True)
    visits = runs[0].visits
    assert len(visits) == runs[0].length == len(recorder.squares)
    for visit, handed in zip(visits, recorder.squares, strict=True):
        np.testing.assert_array_equal(visit[6], handed)
    # The same episode as a recorded one: replay its actions, recording views and cells.
    env = make_env("MiniGrid-FourRooms-v0")
    obs, _ = env.reset(seed=5)
    rows = {"image": [], "direction": [], "position": []}
    for visit in visits:
        rows["image"].append(obs["image"])
        rows["direction"].append(obs["direction"])
        rows["position"].append(env.unwrapped.agent_pos)
        obs, *_ = env.step(visit[3])
    recorded = episode_maps(
        np.stack(rows["image"]),
        np.array(rows["direction"]),
        np.array(rows["position"]),
        np.array([0, len(visits)]),
        9,
    )
    np.testing.assert_array_equal(recorded, np.stack([visit[6] for visit in visits]))
    assert (recorded[-1][..., 0] != UNSEEN).sum() > (recorded[0][..., 0] != UNSEEN).sum()


def test_demonstrations_record_where_the_agent_stood():
    demos, _ = generate("MiniGrid-FourRooms-v0", 3, seed=2, noise=0.3, expert="explorer")
    for e in range(demos.episodes):
        first, stop = demos.episode_start[e], demos.episode_start[e + 1]
        env = make_env("MiniGrid-FourRooms-v0")
        env.reset(seed=int(demos.env_seed[e]))
        for row in range(first, stop):
            assert tuple(demos.position[row]) == tuple(env.unwrapped.agent_pos)
            env.step(int(demos.executed[row]))
    chunks = Chunks.from_demos(demos, horizon=4, history=0, map_size=15, words=0, device="cpu")
    assert chunks.map.shape == (demos.samples, 15, 15, 3)
    start = chunks.map[demos.episode_start[:-1]]
    assert (start[..., 0] != UNSEEN).any(), "the first view is on the map from the first step"


def test_the_model_reads_the_map_and_no_map_is_nothing_seen():
    config = ModelConfig(hidden=32, depth=2, heads=4, horizon=8, map=9)
    model = trained_looking(DiT(config)).eval()
    image, direction, actions = batch()
    t = torch.full((5,), 0.5)
    nothing = Past.empty(5, 0, 9, image.device)
    seen = Past(
        nothing.image, nothing.direction, nothing.action, torch.randint_like(nothing.map, 0, 3)
    )
    assert torch.equal(
        model(image, direction, actions, t), model(image, direction, actions, t, nothing)
    )
    assert not torch.allclose(
        model(image, direction, actions, t, nothing), model(image, direction, actions, t, seen)
    )


@pytest.mark.parametrize("size", [10, 12, 4])
def test_a_map_that_cannot_be_cut_into_patches_around_the_agent_is_bad_input(size):
    with pytest.raises(BadInput, match=f"model.map={size} must be an odd multiple of 3"):
        validate(apply_sets(DEFAULT, [f"model.map={size}"]))


def test_a_policy_with_a_map_trains_relabels_and_plans():
    config = tiny("MiniGrid-DoorKey-5x5-v0", **{"model.map": 9, "train.dagger_every": 1})
    trainer = Trainer(config, for_data(config.data))
    before = len(trainer.train_set)
    metrics = trainer.train_iteration()
    assert len(trainer.train_set) > before and trainer.train_set.map.shape[1:] == (9, 9, 3)
    assert 0 <= metrics["eval/success"] <= 1


def test_a_loop_needs_the_whole_map_to_repeat_not_only_the_square_read_now():
    """Two moments with the same square around the agent but different maps are not the same
    moment: cells seen earlier come back into the square as the agent moves, so the plans
    after them can differ. The loop check keys on the whole map."""
    env = make_env("MiniGrid-FourRooms-v0")
    observation, _ = env.reset(seed=3)
    here, elsewhere = Memory(0, 3, env), Memory(0, 3, env)
    here.see(observation, env)
    u = env.unwrapped
    far = (u.grid.width - 1 - u.agent_pos[0], u.grid.height - 1 - u.agent_pos[1])
    elsewhere.known.observe(observation["image"], (u.agent_dir + 2) % 4, far)
    elsewhere.see(observation, env)
    assert np.array_equal(here.square, elsewhere.square), "the square read now is the same"
    assert here.key() != elsewhere.key(), "the maps differ, so this is not a repeat"
