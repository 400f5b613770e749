"""Environments, seeds and the demonstration files, with real MiniGrid and real files."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import data.blocks as blocks
import data.demos as demos_module
from conftest import ROOT
from data.demos import FORMAT_VERSION, Demos, cached, generate, load, save
from data.envs import EPISODE_SETS, check_env_id, episode_seeds, layouts, make_env
from data.errors import BadInput

ENV_ID = "MiniGrid-DoorKey-5x5-v0"
EPISODES = 6


@pytest.fixture(scope="module")
def generated():
    return generate(ENV_ID, EPISODES, seed=3)


def _arrays(demos):
    return {name: getattr(demos, name) for name in Demos.__dataclass_fields__}


def _bad_input_message(call, *args) -> str:
    with pytest.raises(BadInput) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


# Environments and seeds


@pytest.mark.parametrize(
    "env_id, says",
    [
        ("MiniGrid-Playground-v0", "not of a family this search supports"),
        ("NotAnEnv-v0", "not a registered gymnasium id"),
        ("BabyAI-PutNextS5N2Carrying-v0", "the agent starts carrying an object"),
        ("BabyAI-GoToLocl-v0", "did you mean BabyAI-GoToLocal-v0?"),
    ],
)
def test_an_unsupported_env_id_says_why_and_where_to_look(env_id, says):
    message = _bad_input_message(check_env_id, env_id)
    assert env_id in message and says in message and "`envs` lists them" in message
    _bad_input_message(make_env, env_id)


@pytest.mark.parametrize(
    ("seed", "episodes"), [(0, 1), (0, 1000), (7, 50), (2146, 1_000_000), (10**12 + 5, 300)]
)
def test_the_three_sets_of_episodes_are_disjoint_and_in_range(seed, episodes):
    training, selection, test = (episode_seeds(w, seed, episodes) for w in EPISODE_SETS)
    assert training.dtype == selection.dtype == test.dtype == np.int64
    # Consecutive modulo 2**31, so all distinct (a run shorter than 2**31 cannot repeat).
    assert len(training) == episodes and np.all(np.diff(training) % 2**31 == 1)
    assert np.array_equal(selection - 2**31, training)
    assert np.array_equal(test - 2**32, training)
    assert training.min() >= 0 and training.max() < 2**31 <= selection.min()
    assert selection.max() < 2**32 <= test.min() and test.max() < 3 * 2**31
    assert np.array_equal(training, episode_seeds("training", seed, episodes))  # deterministic


def test_seeds_of_different_runs_never_cross_over():
    sets = [np.concatenate([episode_seeds(w, s, 100) for s in range(20)]) for w in EPISODE_SETS]
    for i, a in enumerate(sets):
        for b in sets[i + 1 :]:
            assert not np.intersect1d(a, b).size


@pytest.mark.parametrize(("seed", "episodes"), [(-1, 10), (0, 0), (0, 1_000_001)])
def test_bad_seed_arguments_are_bad_input(seed, episodes):
    for which in EPISODE_SETS:
        _bad_input_message(episode_seeds, which, seed, episodes)


@pytest.mark.parametrize(
    ("env_id", "unseen"),
    [("MiniGrid-Empty-8x8-v0", False), ("MiniGrid-FourRooms-v0", True)],
)
def test_layouts_tell_a_fixed_environment_from_a_random_one(env_id, unseen):
    """Empty-8x8 starts every episode from one layout, so no test episode can be unseen;
    FourRooms draws goal, agent and walls' gaps anew, so test layouts are new ones."""
    training = set(layouts(env_id, episode_seeds("training", 0, 200)))
    test = layouts(env_id, episode_seeds("test", 0, 50))
    assert (len(training) == 1) is (not unseen)
    new = [layout for layout in test if layout not in training]
    assert (len(new) == 50) if unseen else not new


# Generation


def test_generate_records_the_expert_succeeding(generated):
    demos, meta = generated
    assert meta["expert_success_rate"] == 1.0
    assert meta["episodes"] == demos.episodes == EPISODES
    assert meta["samples"] == demos.samples == demos.episode_start[-1]
    assert meta["mean_episode_length"] == demos.samples / EPISODES
    assert np.array_equal(demos.env_seed, episode_seeds("training", 3, EPISODES))
    # Every episode ends by walking onto the goal.
    assert np.all(demos.action[demos.episode_start[1:] - 1] == 2)


def test_first_row_is_the_reset_observation(generated):
    demos, _ = generated
    obs, _ = make_env(ENV_ID).reset(seed=int(demos.env_seed[1]))
    row = demos.episode_start[1]
    assert np.array_equal(demos.image[row], obs["image"])
    assert demos.direction[row] == obs["direction"]


# Splitting


@pytest.mark.parametrize("val_fraction", [0.0, 0.2, 0.5, 0.99])
def test_split_keeps_each_episode_on_one_side(generated, val_fraction):
    demos, _ = generated
    train, val = demos.split(val_fraction)
    assert train.episodes >= 1 and val.episodes >= 1
    assert train.episodes + val.episodes == demos.episodes
    assert not np.intersect1d(train.env_seed, val.env_seed).size
    for name, array in _arrays(demos).items():
        if name != "episode_start":
            joined = np.concatenate([getattr(train, name), getattr(val, name)])
            assert np.array_equal(joined, array), name


def test_split_puts_the_last_episodes_in_validation(generated):
    demos, _ = generated
    _, val = demos.split(0.34)  # ceil(6 * 0.34) = 3
    assert np.array_equal(val.env_seed, demos.env_seed[-3:])


def test_split_of_one_episode_leaves_validation_empty(generated):
    demos, _ = generated
    one, _ = demos.split(5 / 6)
    train, val = one.split(0.5)
    assert (train.episodes, val.episodes, val.samples) == (1, 0, 0)


# Saving and loading


def test_same_arguments_give_byte_identical_files(tmp_path):
    for name in ("a.npz", "b.npz"):
        save(*generate(ENV_ID, 3, seed=1), tmp_path / name)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


@pytest.mark.slow  # processes of its own
@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "BabyAI-GoToLocal-v0"])
def test_demonstrations_built_side_by_side_are_the_one_process_build_byte_for_byte(
    env_id, tmp_path, monkeypatch
):
    monkeypatch.setattr(demos_module, "BLOCK", 4)  # 10 episodes: 3 blocks on 2 processes
    monkeypatch.setattr(blocks, "PROGRESS_EVERY", 0.0)  # a line after every block
    said = []
    save(*generate(env_id, 10, seed=2, noise=0.3), tmp_path / "one.npz")
    save(*generate(env_id, 10, seed=2, noise=0.3, jobs=2, log=said.append), tmp_path / "two.npz")
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    assert (tmp_path / "one.json").read_text() == (tmp_path / "two.json").read_text()
    assert len(said) == 3 and said[-1].startswith(f"demonstrations of {env_id}: 10/10 episodes")


def test_a_quick_build_says_one_line_of_progress(monkeypatch):
    monkeypatch.setattr(demos_module, "BLOCK", 2)  # 5 episodes: 3 blocks, well within 10 s
    said = []
    generate(ENV_ID, 5, seed=2, log=said.append)
    assert len(said) == 1 and said[0].startswith(f"demonstrations of {ENV_ID}: 5/5 episodes")


def test_load_round_trips(generated, tmp_path):
    demos, meta = generated
    path = tmp_path / "nested" / "demos.npz"
    save(demos, meta, path)
    loaded, loaded_meta = load(path)
    assert loaded_meta == meta == json.loads(path.with_suffix(".json").read_text())
    for name, array in _arrays(demos).items():
        assert np.array_equal(getattr(loaded, name), array), name
    assert sorted(os.listdir(path.parent)) == ["demos.json", "demos.npz"]  # no temporaries


def test_load_without_sidecar_rebuilds_metadata(generated, tmp_path):
    demos, meta = generated
    path = tmp_path / f"{ENV_ID}-n{EPISODES}-s3-p0-v{FORMAT_VERSION}.npz"
    save(demos, meta, path)
    path.with_suffix(".json").write_text("{not json")
    _, rebuilt = load(path)
    assert rebuilt["env_id"] == ENV_ID and rebuilt["seed"] == 3
    assert rebuilt["samples"] == meta["samples"] and rebuilt["episodes"] == EPISODES


def _write_npz(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _bad_files(demos, path):
    """Each way a demonstrations file can be wrong, as a function that writes it to `path`."""
    arrays = {"format_version": np.array(FORMAT_VERSION), **_arrays(demos)}
    valid = path.parent / "valid.npz"
    save(demos, {}, valid)

    def offsets_past_the_end():
        _write_npz(path, {**arrays, "episode_start": arrays["episode_start"] + 1})

    return {
        "truncated": lambda: path.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2]),
        "not-a-zip": lambda: path.write_text("hello"),
        "empty": lambda: path.write_bytes(b""),
        "wrong-version": lambda: _write_npz(
            path, {**arrays, "format_version": np.array(FORMAT_VERSION + 1)}
        ),
        "missing-array": lambda: _write_npz(path, {k: v for k, v in arrays.items() if k != "plan"}),
        "wrong-shape": lambda: _write_npz(path, {**arrays, "image": arrays["image"][:, :5, :5]}),
        "wrong-dtype": lambda: _write_npz(path, {**arrays, "plan": arrays["plan"] + 0.5}),
        "bad-offsets": offsets_past_the_end,
    }


BAD_FILE_KINDS = [
    "truncated",
    "not-a-zip",
    "empty",
    "wrong-version",
    "missing-array",
    "wrong-shape",
    "wrong-dtype",
    "bad-offsets",
]


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_load_rejects_a_bad_file(generated, tmp_path, kind):
    path = tmp_path / "demos.npz"
    _bad_files(generated[0], path)[kind]()
    message = _bad_input_message(load, path)
    assert str(path) in message and "rerun" in message


def test_load_rejects_a_missing_file(tmp_path):
    message = _bad_input_message(load, tmp_path / "absent.npz")
    assert "does not exist" in message


# The cache


def test_cached_reuses_the_file(tmp_path):
    demos, meta, path = cached(ENV_ID, 2, 5, tmp_path)
    assert path == tmp_path / f"{ENV_ID}-n2-s5-p0-v{FORMAT_VERSION}.npz"
    written = path.stat().st_mtime_ns
    again, again_meta, same_path = cached(ENV_ID, 2, 5, tmp_path)
    assert same_path == path and path.stat().st_mtime_ns == written
    assert again_meta == meta and np.array_equal(again.action, demos.action)


def test_cached_regenerates_a_corrupt_file(tmp_path):
    demos, _, path = cached(ENV_ID, 2, 5, tmp_path)
    intact = path.read_bytes()
    path.write_bytes(intact[:100])
    regenerated, meta, _ = cached(ENV_ID, 2, 5, tmp_path)
    assert path.read_bytes() == intact
    assert meta["expert_success_rate"] == 1.0
    assert np.array_equal(regenerated.image, demos.image)


def test_cached_rejects_an_unsupported_env(tmp_path):
    _bad_input_message(cached, "MiniGrid-Playground-v0", 2, 0, tmp_path)
    assert not list(tmp_path.iterdir())


# Expert plans and noise injection


def test_plans_are_the_next_expert_actions_without_noise(generated):
    demos, _ = generated
    for e in range(demos.episodes):
        rows = range(demos.episode_start[e], demos.episode_start[e + 1])
        for i in rows:
            rest = demos.action[i : rows.stop].tolist()
            expected = (rest + [6] * 64)[:64]
            assert demos.plan[i].tolist() == expected, f"episode {e} row {i}"


def test_noisy_demonstrations_leave_the_path_and_label_recoveries():
    clean, _ = generate(ENV_ID, 20, seed=0)
    noisy, meta = generate(ENV_ID, 20, seed=0, noise=0.3)
    assert meta["noise"] == 0.3 and meta["expert_success_rate"] == 1.0
    assert noisy.samples > clean.samples, "perturbations lengthen episodes"
    # Episodes start from the same reset state, so their first labels are the clean ones.
    for e in range(20):
        clean_first = clean.plan[clean.episode_start[e]]
        assert np.array_equal(noisy.plan[noisy.episode_start[e]], clean_first), f"episode {e}"
    # After a perturbation the expert replans: the next label is not the old plan shifted.
    shifted = np.all(noisy.plan[1:, :-1] == noisy.plan[:-1, 1:], axis=1)
    same_episode = np.ones(noisy.samples - 1, dtype=bool)
    same_episode[noisy.episode_start[1:-1] - 1] = False
    assert (~shifted & same_episode).any() and (shifted & same_episode).any()
    again, _ = generate(ENV_ID, 20, seed=0, noise=0.3)
    assert np.array_equal(again.plan, noisy.plan), "noise is seeded"
    with pytest.raises(BadInput):
        generate(ENV_ID, 2, seed=0, noise=1.5)


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    from data import files

    path = tmp_path / "demos.npz"
    files.write_atomically(path, b"old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        files.write_atomically(path, b"new content, half written")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["demos.npz"], "no temporary file left"


class Exploit:
    """Unpickling this runs code: it touches ``self.path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_crafted_dataset_cannot_run_code(generated, tmp_path):
    arrays = {"format_version": np.array(FORMAT_VERSION), **_arrays(generated[0])}
    pwned = tmp_path / "pwned"
    crafted = np.empty(1, dtype=object)
    crafted[0] = Exploit(pwned)
    path = tmp_path / "demos.npz"
    _write_npz(path, {**arrays, "plan": crafted})  # numpy pickles object arrays
    message = _bad_input_message(load, path)
    assert str(path) in message and not pwned.exists()


WRITER = """
import sys
from data.files import write_atomically
for i in range(10**6):  # until killed
    write_atomically(sys.argv[1], bytes([i % 256]) * 20_000_000)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    """kill -9 a process that keeps rewriting a 20 MB file: what is there is always one whole
    version, never part of one."""
    path = tmp_path / "demos.npz"
    path.write_bytes(b"old")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT)
    for _ in range(3):
        time.sleep(0.7)  # each write takes a fraction of a second: kill lands inside one
        content = path.read_bytes()
        assert content == b"old" or content == content[:1] * 20_000_000
    writer.kill()
    writer.wait()
    content = path.read_bytes()
    assert content == b"old" or (len(content) == 20_000_000 and len(set(content)) == 1)
