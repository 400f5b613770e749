"""`compare`: searches' finalists and `train` runs side by side, on hand-made search folders
and a real (tiny) `train` run."""

import json
import math

import numpy as np
import pytest
from handmade import finalist_runs, trial, write_experiment, write_search
from PIL import Image

from conftest import tiny
from core.evaluate import TESTED
from core.seed_runs import train_seeds
from data.errors import BadInput
from run_search import main
from search.compare import compare, read_runs
from search.record import Chosen


@pytest.fixture
def search_folder(tmp_path):
    folder = tmp_path / "results" / "a"
    chosen = Chosen({"incumbent": {}, "trial_00000002": {"train.lr": 0.0011}}, [1, 2])
    trials = [trial(1, [0.1, 0.3, 0.5]), trial(2, [0.2, 0.4, 0.6]), trial(3, [0.0])]
    write_search(folder, [*trials, trial(4, [0.1])], stage="done", chosen=chosen)
    returns = {"incumbent": 0.4, "trial_00000002": 0.8}
    write_experiment(folder / "finalists", finalist_runs(chosen.configs, chosen.seeds, returns))
    return folder


def test_a_search_gives_a_row_a_finalist_and_a_train_run_one(search_folder, tmp_path):
    train = tmp_path / "run"
    train_seeds(tiny(), 2, train, log=lambda line: None)
    rows = compare([search_folder, train], tmp_path / "out")
    assert [row.name for row in rows] == ["a/trial_00000002", "a/incumbent", "run"]
    mean, half = rows[0].interval("test/return")
    assert mean == pytest.approx(0.815) and math.isfinite(half)
    assert set(rows[2].seeds) == {"0", "1"} and all(rows[2].curves.values())
    table = (tmp_path / "out" / "compare.md").read_text()
    assert "| a/trial_00000002 | MiniGrid-DoorKey-5x5-v0 | 2 | 1.000 ± 0.000 | 0.815 ±" in table
    with Image.open(tmp_path / "out" / "compare.png") as image:
        assert image.size[0] > 500


def test_a_folder_that_is_not_a_run_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="neither a search folder"):
        read_runs([tmp_path])


def train_run(folder, returns: dict[int, list[float]], env="MiniGrid-DoorKey-5x5-v0", first=0):
    """A hand-made finished `train` run: each seed's test episodes (env seeds from ``first``)
    with their returns."""
    seeds = {}
    for seed, values in returns.items():
        episodes = [
            {"seed": first + i, "return": float(r), "success": bool(r > 0)}
            for i, r in enumerate(values)
        ]
        (folder / f"seed{seed}").mkdir(parents=True)
        (folder / f"seed{seed}" / TESTED).write_text(json.dumps({"episodes": episodes}))
        seeds[str(seed)] = {"test/return": sum(values) / len(values)}
    summary = {"config": {"data": {"env": env}}, "seeds": seeds}
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder


def test_each_run_is_set_against_the_first_on_the_same_seeds_and_episodes(tmp_path):
    rng = np.random.default_rng(0)
    base = {seed: list(rng.uniform(0, 0.6, 200)) for seed in (0, 1)}
    better = {seed: [r + 0.2 for r in values] for seed, values in base.items()}
    runs = [
        train_run(tmp_path / "a" / "default" / "ENV", base),
        train_run(tmp_path / "b" / "default" / "ENV", better),  # a known better
        train_run(tmp_path / "c" / "default" / "ENV", base),  # a known equal
        train_run(tmp_path / "d" / "default" / "ENV", base, env="MiniGrid-Empty-5x5-v0"),
        train_run(tmp_path / "e" / "default" / "ENV", base, first=1000),
        train_run(tmp_path / "f" / "default" / "ENV", {2: base[0]}),
    ]
    compare(runs, tmp_path / "out")
    lines = (tmp_path / "out" / "compare.md").read_text().splitlines()
    paired = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ")}
    assert "Paired against a/default/ENV" in "\n".join(lines), "names tell the runs apart"
    same, up = "+0.000 [+0.000, +0.000]", "+0.200 [+0.200, +0.200]"  # success; return
    assert paired["b/default/ENV"].endswith(f"| 2 | {same} | {up} | 1.00 | better |")
    assert paired["c/default/ENV"].endswith(f"| 2 | {same} | {same} | 0.50 | undecided |")
    assert paired["d/default/ENV"].endswith("not paired: another environment |")
    assert "not paired: other test episodes" in paired["e/default/ENV"]
    assert "not paired: no training seed" in paired["f/default/ENV"]


def test_a_search_s_finalists_are_paired_on_their_test_episodes(tmp_path):
    folder = tmp_path / "results" / "s"
    chosen = Chosen({"incumbent": {}, "trial_00000002": {"train.lr": 0.0011}}, [1, 2])
    write_search(folder, [trial(1, [0.1]), trial(2, [0.2])], stage="done", chosen=chosen)
    episodes = {
        "incumbent": {seed: [0.1, 0.5, 0.3, 0.2] for seed in chosen.seeds},
        "trial_00000002": {seed: [0.6, 0.9, 0.7, 0.8] for seed in chosen.seeds},
    }
    returns = {"incumbent": 0.275, "trial_00000002": 0.75}
    write_experiment(
        folder / "finalists", finalist_runs(chosen.configs, chosen.seeds, returns, episodes)
    )
    rows = compare([folder], tmp_path / "out")
    assert [row.name for row in rows] == ["s/trial_00000002", "s/incumbent"]
    table = (tmp_path / "out" / "compare.md").read_text()
    assert "| s/incumbent | 2 | +0.000 [+0.000, +0.000] | -0.475 [" in table
    assert table.rstrip().endswith("| worse |")


def test_the_same_weights_planning_two_ways_are_paired_through_evaluate_run(tmp_path, capsys):
    """`evaluate --run` writes a folder `compare` reads as a one-seed run: a checkpoint played
    greedily and at temperature 1 on the same test episodes, paired episode by episode."""
    trained = tmp_path / "run"
    train_seeds(tiny(), 1, trained, log=lambda line: None)
    checkpoint = trained / "seed0" / "checkpoint.pt"
    played = []
    for name, temperature in (("greedy", 0), ("hot", 1)):
        args = ["evaluate", checkpoint, "--episodes", "4", "--run", tmp_path / name]
        assert main([*map(str, args), "--set", f"diffusion.temperature={temperature}"]) == 0
        played.append(json.loads((tmp_path / name / "seed0" / TESTED).read_text())["episodes"])
    assert [e["seed"] for e in played[0]] == [e["seed"] for e in played[1]], "the same episodes"
    hot = json.loads((tmp_path / "hot" / "metrics.json").read_text())
    assert hot["config"]["diffusion"]["temperature"] == 1, "the planning it was played with"
    rows = compare([tmp_path / "greedy", tmp_path / "hot"], tmp_path / "out")
    assert rows[1].tested["0"] == played[1]
    assert "| hot | 1 |" in (tmp_path / "out" / "compare.md").read_text(), "paired, one seed"
    code = main(["evaluate", str(checkpoint), "--run", str(tmp_path / "hot")])
    assert code == 2 and "already holds a run" in capsys.readouterr().err
