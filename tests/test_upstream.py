"""Canaries for the private parts of Ray Tune and Optuna that search/upstream.py reads. Each
fails when an upgrade changes what it relies on; then mend that accessor before moving the pin
in pyproject.toml."""

from types import SimpleNamespace

import optuna
import pytest
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search.optuna import OptunaSearch

from search import upstream
from search.spaces import default


@pytest.fixture
def asha():
    scheduler = AsyncHyperBandScheduler(
        time_attr="iteration", max_t=9, grace_period=1, reduction_factor=3, brackets=1
    )
    scheduler.set_search_properties("eval/return", "max")
    return scheduler


def test_asha_rungs_are_milestones_with_the_values_recorded_there(asha):
    rungs = upstream.asha_rungs(asha)
    assert [milestone for milestone, _ in rungs] == [9, 3, 1], "highest first, grace last"
    trial = SimpleNamespace(trial_id="a")
    asha.on_trial_add(None, trial)
    asha.on_trial_result(None, trial, {"iteration": 1, "eval/return": 0.25})
    assert upstream.asha_rungs(asha)[2][1] == {"a": 0.25}
    asha.on_trial_result(None, trial, {"iteration": 3, "eval/return": 0.5})
    assert upstream.asha_rungs(asha)[1][1] == {"a": 0.5}


def test_asha_keeps_a_book_of_its_trials(asha):
    trial = SimpleNamespace(trial_id="a")
    assert not upstream.asha_knows(asha, "a")
    asha.on_trial_add(None, trial)
    assert upstream.asha_knows(asha, "a")
    upstream.asha_forget(asha, "a")
    assert not upstream.asha_knows(asha, "a")
    upstream.asha_forget(asha, "never added")  # forgetting twice is harmless


def test_optuna_search_exposes_its_study_trials_and_told_set():
    searcher = OptunaSearch(
        space=default, metric="eval/return", mode="max", sampler=optuna.samplers.RandomSampler(0)
    )
    suggested = searcher.suggest("a")
    study = upstream.optuna_study(searcher)
    assert isinstance(study, optuna.Study)
    trial = upstream.optuna_trial(searcher, "a")
    assert isinstance(trial, optuna.Trial) and trial.params["train.lr"] == suggested["train.lr"]
    assert "a" not in upstream.optuna_told(searcher)
    searcher.on_trial_complete("a", {"eval/return": 0.5, "training_iteration": 1})
    assert "a" in upstream.optuna_told(searcher)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_a_damaged_experiment_snapshot_is_told_apart_from_none(tmp_path):
    assert upstream.experiment_snapshot(tmp_path) == {}, "no snapshot yet"
    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text("{not json")
    assert upstream.experiment_snapshot(tmp_path) is None


def forever(config):
    """A trainable for the Tuner canary; never run."""


def test_a_tuners_callbacks_can_be_added_to(tmp_path):
    given = JsonLoggerCallback()
    tuner = tune.Tuner(
        forever, run_config=tune.RunConfig(storage_path=str(tmp_path), callbacks=[given])
    )
    callbacks = upstream.restored_callbacks(tuner)
    assert callbacks == [given]
    added = CSVLoggerCallback()
    callbacks.append(added)
    assert upstream.restored_callbacks(tuner) == [given, added], "the list the run will use"
