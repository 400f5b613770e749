"""The command line as a user runs it: real subprocesses, real files."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, cli, tiny
from core.checkpoint import load_checkpoint
from core.seed_runs import train_seeds

pytestmark = pytest.mark.slow  # the command line in subprocesses

TINY = [
    "--set",
    "model.hidden=32",
    "--set",
    "model.depth=1",
    "--set",
    "model.heads=2",
    "--set",
    "model.horizon=4",
    "--set",
    "train.steps_per_iter=5",
    "--set",
    "train.iters=2",
    "--set",
    "train.eval_episodes=3",
    "--set",
    "data.episodes=12",
    "--set",
    "train.threads=1",
    "--set",
    "train.dagger_episodes=4",
]


def test_data_train_evaluate(tmp_path):
    out = tmp_path / "demos.npz"
    env = ("--env", "MiniGrid-Empty-5x5-v0")
    made = cli("data", *env, "--episodes", 12, "--out", out, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["env_id"] == "MiniGrid-Empty-5x5-v0" and meta["expert_success_rate"] == 1.0

    run = tmp_path / "run"
    trained = cli(
        "train", "--data", out, *TINY, "--seeds", 2, "--jobs", 2, "--out", run, cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    assert "iter   2/2" in trained.stdout, "per-iteration progress on the terminal"
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(summary["seeds"]) == {"0", "1"}
    assert {"eval/success", "eval/return", "eval/len_ratio"} <= set(summary["mean"])
    assert list((tmp_path / "run" / "seed0" / "tb").iterdir()), "TensorBoard events written"
    history = (tmp_path / "run" / "seed0" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in history] == [1, 2]

    checkpoint = tmp_path / "run" / "seed1" / "checkpoint.pt"
    gif = tmp_path / "episode.gif"
    evaluated = cli("evaluate", checkpoint, "--episodes", 4, "--gif", gif, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics, _ = json.JSONDecoder().raw_decode(evaluated.stdout)
    assert 0.0 <= metrics["test/success"] <= 1.0 and metrics["test/episodes"] == 4
    assert "test episodes" in evaluated.stdout, "the unseen-layout line"
    with Image.open(gif) as image:
        assert image.n_frames > 1 and image.size[0] >= 64


def test_the_memory_preset_trains_on_the_explorers_demonstrations_with_a_map(tmp_path):
    run = tmp_path / "run"
    args = ("--preset", "memory", "--env", "MiniGrid-FourRooms-v0", "--out", run)
    trained = cli("train", *args, *TINY, "--set", "train.test_episodes=5", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["data"]["expert"] == "explorer" and config["model"]["map"] == 15
    assert config["train"]["iters"] == 2, "--set overrides the preset's 60 iterations"
    cached = [path.name for path in (tmp_path / "data" / "cache").glob("*.npz")]
    assert cached and all("explorer" in name for name in cached), cached
    weights = load_checkpoint(run / "seed0" / "checkpoint.pt")["model"]
    assert any(name.startswith("known.") for name in weights), "the model reads the map"


def test_seeds_side_by_side_train_as_one_by_one(tmp_path):
    config = tiny()
    quiet = lambda line: None  # noqa: E731
    one_by_one = train_seeds(config, 2, tmp_path / "a", log=quiet)
    side_by_side = train_seeds(config, 2, tmp_path / "b", log=quiet, jobs=2)

    def figures(summary, seed):  # as text: NaN (no success to measure a length by) equals NaN
        timing = {"time/minutes", "perf/samples_per_s"}
        metrics = summary["seeds"][seed]
        return json.dumps({k: v for k, v in metrics.items() if k not in timing}, sort_keys=True)

    for seed in ("0", "1"):
        assert figures(one_by_one, seed) == figures(side_by_side, seed)
        assert (tmp_path / "b" / f"seed{seed}" / "checkpoint.pt").is_file()
    assert one_by_one["seeds"]["0"]["val/loss"] != one_by_one["seeds"]["1"]["val/loss"]


def test_data_is_byte_identical_and_cached(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for path in (a, b):
        args = ("data", "--env", "MiniGrid-DoorKey-5x5-v0", "--episodes", 5, "--seed", 3)
        assert cli(*args, "--out", path, cwd=tmp_path).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    cached = cli("data", "--env", "MiniGrid-DoorKey-5x5-v0", "--episodes", 5, cwd=tmp_path)
    assert cached.returncode == 0
    path = Path(json.loads(cached.stdout)["path"])
    assert (tmp_path / path).is_file() and path.parts[:2] == ("data", "cache")


def test_no_shell_and_no_unsafe_loading_in_the_code():
    """Nothing runs a shell with user input, and nothing a user hands us is unpickled."""
    unsafe = re.compile(
        r"shell=True|os\.system\(|os\.popen\(|pickle\.loads?\(|yaml\.load\(|yaml\.unsafe"
        r"|allow_pickle=True|weights_only=False|(?<![\w.])(eval|exec)\("
    )
    sources = [p for d in ("core", "data", "search", "bench") for p in (ROOT / d).rglob("*.py")]
    for path in [*sources, ROOT / "run_search.py"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]  # comments may name what the code avoids
            assert not unsafe.search(code), f"{path.name}:{number}: {line.strip()}"


def test_train_killed_mid_run_resumes_to_the_same_numbers(tmp_path):
    slow = [*TINY, "--set", "train.iters=4", "--set", "train.steps_per_iter=150"]
    straight = cli("train", *slow, "--out", tmp_path / "straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "run_search.py"), "train", *slow, "--out", str(run)]
    driver = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    history = run / "seed0" / "history.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            driver.kill()
            break
        time.sleep(0.05)
    driver.wait()
    assert not (run / "metrics.json").exists(), "killed before the end"
    # Say the killed sitting took 1000 s: the run's time goes on from there.
    kept = [json.loads(line) for line in history.read_text().splitlines()]
    history.write_text("".join(json.dumps({**x, "time/seconds": 1000.0}) + "\n" for x in kept))
    again = cli("train", "--set", "train.lr=1", "--out", run, "--resume", cwd=tmp_path)
    assert again.returncode == 2 and "drop --set" in again.stderr, "a resume takes no changes"
    resumed = cli("train", "--out", run, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2, 3, 4], "each iteration written once"
    assert all(line["time/seconds"] > 1000 for line in lines[2:]), "time goes on from 1000 s"
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())["mean"]
    got = json.loads((run / "metrics.json").read_text())["mean"]
    assert got["time/minutes"] > 1000 / 60, "every sitting's time counts"
    for metric in ("train/loss", "val/loss", "eval/return", "test/return"):
        assert got[metric] == pytest.approx(expected[metric], abs=1e-9), metric
    finished = cli("train", "--out", run, "--resume", cwd=tmp_path)
    assert finished.returncode == 2 and "nothing to resume" in finished.stderr


def test_version_and_help_load_neither_torch_nor_ray_nor_optuna():
    """The command line answers --version and --help without the heavy libraries: the
    configuration's schema and the search's settings load on their own."""
    for args in (["--version"], ["--help"], ["search", "--help"], ["train", "--help"]):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", str(ROOT / "run_search.py"), *args],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
        heavy = modules & {"torch", "ray", "optuna", "gymnasium", "minigrid"}
        assert not heavy, f"{' '.join(args)} imported {sorted(heavy)}"


def test_a_mission_in_words_trains_evaluates_and_compares(tmp_path):
    """`train` on a BabyAI level (demonstrations by BabyAIBot, the mission read as words),
    `evaluate --out`, and `compare` of the run, as the README shows them."""
    run = tmp_path / "run"
    args = ("--env", "BabyAI-GoToRedBallGrey-v0", "--seeds", 2, "--out", run)
    trained = cli("train", *args, *TINY, "--set", "train.test_episodes=5", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["data"]["expert"] == "auto" and config["model"]["mission"] is True
    weights = load_checkpoint(run / "seed0" / "checkpoint.pt")["model"]
    assert any(name.startswith("mission.") for name in weights), "the model reads the mission"
    figures = tmp_path / "figures.json"
    evaluated = cli(
        "evaluate", run / "seed1" / "checkpoint.pt", "--episodes", 3, "--out", figures, cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "NaN" not in evaluated.stdout and json.loads(figures.read_text())["test/episodes"] == 3
    compared = cli("compare", run, "--out", tmp_path / "cmp", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "| run | BabyAI-GoToRedBallGrey-v0 | 2 |" in compared.stdout
    assert (tmp_path / "cmp" / "compare.png").is_file()
