"""`compare`: searches' finalists and `train` runs side by side, on hand-made search folders
and a real (tiny) `train` run."""

import math

import pytest
from handmade import finalist_runs, trial, write_experiment, write_search
from PIL import Image

from conftest import tiny
from core.seed_runs import train_seeds
from data.errors import BadInput
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
