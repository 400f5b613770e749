"""ASHA's rungs survive a driver restart: the real scheduler, fed results, saved, and a fresh
copy (as ``Tuner.restore`` unpickles it) reading them back."""

import pickle
from types import SimpleNamespace

import yaml
from ray.tune.schedulers import TrialScheduler

from search import upstream
from search.scheduler import STATE_FILE, forget_unknown_trials, make_scheduler

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


def asha(folder, max_t=9, grace=1, rf=3):
    scheduler = make_scheduler("asha", folder, max_t, grace, rf)
    scheduler.set_search_properties("eval/return", "max")
    return scheduler


def report(scheduler, trial_id: str, iteration: int, value: float, **more) -> str:
    trial = SimpleNamespace(trial_id=trial_id)
    if not upstream.asha_knows(scheduler, trial_id):
        scheduler.on_trial_add(None, trial)
    result = {"iteration": iteration, "eval/return": value, **more}
    return scheduler.on_trial_result(None, trial, result)


def test_tied_returns_are_judged_on_validation_loss(tmp_path):
    """Ray's ASHA stops only values strictly below the cutoff: a rung of zeros would stop
    nothing. Validation loss breaks the tie, and cannot outweigh a real difference."""
    scheduler = asha(tmp_path, rf=2)
    assert report(scheduler, "a", 1, 0.0, **{"val/loss": 1.2}) == CONTINUE
    assert report(scheduler, "b", 1, 0.0, **{"val/loss": 1.5}) == STOP, "tied, worse loss"
    assert report(scheduler, "c", 1, 0.0, **{"val/loss": 0.9}) == CONTINUE
    assert report(scheduler, "d", 1, 0.001, **{"val/loss": 3.0}) == CONTINUE, "better return"
    assert report(scheduler, "e", 1, 0.5) == CONTINUE, "no validation loss: judged as is"


def test_rungs_and_stops_survive_a_restart(tmp_path):
    fresh = asha(tmp_path)
    pickled = pickle.dumps(fresh)  # what Tuner.restore will bring back: the initial state
    assert report(fresh, "a", 1, 0.5) == CONTINUE  # first at the rung: nothing to compare
    assert report(fresh, "b", 1, 0.1) == STOP  # below the cutoff of {0.5}
    assert report(fresh, "c", 1, 0.9) == CONTINUE
    saved = yaml.safe_load((tmp_path / STATE_FILE).read_text())
    assert saved["pruned"] == {"b": 1}
    assert saved["rungs"]["1"] == {"a": 0.5, "b": 0.1, "c": 0.9}

    restored = pickle.loads(pickled)
    # A new trial is judged against the rung as it was, not an empty one...
    assert report(restored, "d", 1, 0.2) == STOP
    # ...and a trial stopped before the crash, which Ray may resume, stays stopped.
    assert report(restored, "b", 2, 1.0) == STOP
    # A trial that passed the rung is not judged at it again when it repeats an iteration.
    assert report(restored, "a", 1, 0.0) == CONTINUE
    assert restored.rungs[-1][1] == {"a": 0.5, "b": 0.1, "c": 0.9, "d": 0.2}


def test_a_fresh_scheduler_without_state_starts_empty(tmp_path):
    scheduler = asha(tmp_path)
    assert report(scheduler, "a", 1, 0.0) == CONTINUE
    assert all(recorded == ({"a": 0.0} if m == 1 else {}) for m, recorded in scheduler.rungs)


def test_ghost_trials_are_forgotten(tmp_path):
    scheduler = asha(tmp_path)
    for trial_id, value in (("a", 0.5), ("ghost", 0.1)):
        report(scheduler, trial_id, 1, value)
    forget_unknown_trials(tmp_path, {"a"})
    saved = yaml.safe_load((tmp_path / STATE_FILE).read_text())
    assert saved["rungs"]["1"] == {"a": 0.5} and saved["pruned"] == {}


def test_full_budget_is_not_counted_as_pruned(tmp_path):
    scheduler = asha(tmp_path, max_t=2, grace=1, rf=2)
    report(scheduler, "a", 1, 0.5)
    assert report(scheduler, "a", 2, 0.6) == STOP  # the end of its budget
    assert scheduler.pruned == {}
