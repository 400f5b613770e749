"""Finalists and test figures, without Ray: who is chosen, how seeds are summarised, when a
winner beats the incumbent, and what a test report says about unseen layouts."""

import math

import pytest
from ray.tune.search.variant_generator import generate_variants
from scipy import stats

from conftest import tiny
from core.config import DEFAULT, flat
from core.console import describe_unseen
from core.evaluate import on_test_episodes
from core.metrics import TIME
from core.statistics import mean_interval
from core.trainer import Trainer
from data.demos import for_data
from data.envs import episode_seeds, layouts
from search.export import compute_line, finalists_md
from search.finalists import (
    INCUMBENT,
    Finalist,
    beats,
    choose,
    costliest_first,
    search_figure,
)
from search.placement import Placement
from search.record import Chosen
from search.results import Trial
from search.settings import Settings
from search.tuner import finalist_tune_config

PRESET_POINT = {"model.hidden": 64, "model.heads": 4, "model.depth": 3, "train.lr": 0.002}


def trial(trial_id: str, status: str = "completed", **values) -> Trial:
    params = {**PRESET_POINT, **values}
    return Trial(
        trial_id, folder=None, params=params, coordinates=params, history=[{}], status=status
    )


def test_the_incumbent_is_always_a_finalist_and_never_twice():
    ranked = [trial("a", **{"train.lr": 0.005}), trial("b"), trial("c", **{"model.depth": 1})]
    chosen = choose(ranked, DEFAULT, count=2)
    assert list(chosen) == [INCUMBENT, "trial_a"], "b is the preset itself: it is the incumbent"
    assert chosen[INCUMBENT] == {} and chosen["trial_a"]["train.lr"] == 0.005
    chosen = choose([ranked[0], ranked[2]], DEFAULT, count=2)
    assert list(chosen) == [INCUMBENT, "trial_a", "trial_c"], "the top 2 and the incumbent"


def test_the_incumbents_search_figure_is_the_preset_trials_own():
    preset = trial("p")
    preset.history = [{"eval/return": 0.37}]
    unknown = Trial("u", folder=None, params={}, coordinates={}, history=[{"eval/return": 0.2}])
    assert search_figure(INCUMBENT, [unknown, preset], DEFAULT) == 0.37, "no values: not it"
    assert math.isnan(search_figure(INCUMBENT, [unknown], DEFAULT))


def test_the_costliest_finalist_runs_first():
    def timed(trial_: Trial, seconds: float) -> Trial:  # two iterations of ``seconds`` each
        trial_.history = [{TIME: i, "time_this_iter_s": seconds} for i in (1, 2)]
        return trial_

    trials = [
        timed(trial("p"), 10.0),
        timed(trial("a", **{"train.lr": 0.005}), 60.0),
        timed(trial("b", **{"model.depth": 1}), 5.0),
    ]
    runs = {INCUMBENT: [1, 2], "trial_b": [1, 2], "trial_gone": [1, 2], "trial_a": [1, 2]}
    order = list(costliest_first(runs, trials, DEFAULT))
    assert order == ["trial_a", INCUMBENT, "trial_b", "trial_gone"]
    # Ray starts the grid's runs in this order, finalist by finalist, seed after seed.
    space = finalist_tune_config(dict.fromkeys(order, [1, 2]), Placement(1, 0, 2, "cpu"))
    started = [
        (spec["finalist"], spec["train.seed"])
        for _, spec in generate_variants(space["param_space"])
    ]
    assert started == [(name, seed) for seed in (1, 2) for name in order]


def test_only_trials_that_ran_the_full_budget_are_finalists():
    ranked = [trial("a", "pruned", **{"train.lr": 0.005}), trial("b", **{"model.depth": 2})]
    assert list(choose(ranked, DEFAULT, count=3)) == [INCUMBENT, "trial_b"]


def test_mean_interval_is_students_t_over_seeds():
    mean, half = mean_interval([0.5, 0.6, 0.7])
    expected = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert mean == pytest.approx(0.6) and half == pytest.approx(expected)
    assert math.isnan(mean_interval([0.4])[1]) and math.isnan(mean_interval([])[0])


def finalist(name: str, returns: list[float]) -> Finalist:
    runs = {seed: {"test/return": r} for seed, r in enumerate(returns, start=1)}
    return Finalist(name, {}, math.nan, runs)


def test_beating_the_incumbent_needs_intervals_that_do_not_overlap():
    incumbent = finalist(INCUMBENT, [0.40, 0.45, 0.50])
    assert beats(finalist("a", [0.80, 0.82, 0.84]), incumbent)
    assert not beats(finalist("b", [0.30, 0.60, 0.90]), incumbent), "better mean, wide interval"
    assert not beats(finalist("c", [0.9]), incumbent), "one seed has no interval"


@pytest.fixture(scope="module")
def trained():
    config = tiny("MiniGrid-Empty-8x8-v0")
    trainer = Trainer(config, for_data(config.data))
    trainer.train_iteration()
    return trainer


def test_a_fixed_layout_environment_says_no_test_episode_is_unseen(trained):
    metrics = on_test_episodes(trained.policy, 5, trained.config.data)
    assert metrics["test/episodes"] == 5 and metrics["test/unseen_episodes"] == 0
    assert metrics["test/layouts"] == 1 and math.isnan(metrics["test/success_unseen"])
    assert "too few layouts for any to be unseen" in describe_unseen(metrics)


def test_a_random_layout_environment_counts_its_unseen_test_episodes(trained):
    data = tiny("MiniGrid-FourRooms-v0").data
    policy = trained.policy
    policy.config = tiny("MiniGrid-FourRooms-v0")  # same network, played on FourRooms
    metrics = on_test_episodes(policy, 6, data)
    assert metrics["test/unseen_episodes"] == 6, "12 demonstrations cannot cover FourRooms"
    assert 0 <= metrics["test/success_unseen"] <= 1
    assert describe_unseen(metrics).startswith("6 of 6 test episodes")


def test_a_layout_only_validation_had_counts_as_unseen(trained):
    """Validation demonstrations are never trained on (and DAgger replays training episodes
    only): a test episode whose layout only they had starts from a layout training lacked."""
    data = tiny("MiniGrid-DoorKey-5x5-v0", **{"data.episodes": 8, "data.val_fraction": 0.5}).data
    policy = trained.policy
    policy.config = tiny("MiniGrid-DoorKey-5x5-v0")
    demonstrated = layouts(data.env, episode_seeds("training", data.seed, 8))
    trained_on = set(demonstrated[:4])
    tested = layouts(data.env, episode_seeds("test", data.seed, 40))
    unseen = sum(layout not in trained_on for layout in tested)
    assert unseen > sum(layout not in set(demonstrated) for layout in tested), "a real test"
    assert on_test_episodes(policy, 40, data)["test/unseen_episodes"] == unseen


def test_the_last_iteration_reports_the_test_figures_and_no_other_does():
    config = tiny(**{"train.iters": 2, "train.test_episodes": 3})
    trainer = Trainer(config, for_data(config.data))
    first, last = trainer.train_iteration(), trainer.train_iteration()
    assert not any(k.startswith("test/") for k in first)
    assert last["test/episodes"] == 3 and "test/return" in last
    none = tiny(**{"train.iters": 1, "train.test_episodes": 0})
    assert not any(
        k.startswith("test/") for k in Trainer(none, for_data(none.data)).train_iteration()
    )
    assert flat(config)["train.test_episodes"] == 3


def test_the_exported_checkpoint_is_the_last_reported_iterations(tmp_path):
    """A trial killed after writing a checkpoint but before reporting it leaves a newer folder
    that no reported result names; the export points to the reported one."""
    for name in ("checkpoint_000000", "checkpoint_000001"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").write_bytes(b"")
    history = [{"iteration": 1, "checkpoint_dir_name": "checkpoint_000000"}]
    reported = Trial("a", tmp_path, {}, {}, history=history)
    assert reported.checkpoint == tmp_path / "checkpoint_000000" / "checkpoint.pt"
    assert Trial("b", tmp_path, {}, {}).checkpoint is None, "nothing reported, nothing exported"


def test_only_stopped_trials_count_as_saved_compute():
    interrupted = [trial("a", "completed"), trial("b", "unfinished"), trial("c", "unfinished")]
    for t, iterations in zip(interrupted, (6, 2, 1), strict=True):
        t.history = [{"iteration": i} for i in range(1, iterations + 1)]
    assert compute_line(interrupted, 6) == (
        "- Compute: 9 trial-iterations; no trial was stopped early."
    ), "an interrupted FIFO search saved nothing"
    interrupted[1].status = "pruned"
    assert "stopping 1 trial(s) early saved 4 of the 13" in compute_line(interrupted, 6)


def test_the_finalists_table_puts_each_figure_under_its_own_name():
    runs = {
        seed: {"test/return": 0.9, "test/success": 0.99, "test/len_ratio": 1.2 + seed / 10}
        for seed in (1, 2)
    }
    retrained = [Finalist("trial_a", {}, 0.95, runs), finalist(INCUMBENT, [0.5, 0.6])]
    table = finalists_md(retrained, Chosen({"trial_a": {}, INCUMBENT: {}}, [1, 2]), Settings())
    header, _, row, _ = [line for line in table.splitlines() if line.startswith("|")]
    cells = dict(zip(header.split("|"), row.split("|"), strict=True))
    assert cells[" test/return "].startswith(" 0.900 ±")
    assert cells[" test/success "].startswith(" 0.990 ±")
    assert cells[" test/len_ratio "].startswith(" 1.350 ±")
    assert cells[" search eval/return "].strip() == "0.95"
