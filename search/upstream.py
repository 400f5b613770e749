"""The private parts of Ray Tune and Optuna this project relies on, and nothing else.

Each accessor below reads or changes something the libraries do not document. A canary in
``tests/test_upstream.py`` checks each against the installed versions and fails when an
upgrade changes it; ``pyproject.toml`` pins the minor versions they were checked against.
To move a pin: raise it, reinstall, run ``pytest tests/test_upstream.py`` and the search
tests, and mend the accessor named by any canary that fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search.optuna import OptunaSearch

# ---- ASHA (ray.tune.schedulers.AsyncHyperBandScheduler) ----


def asha_rungs(scheduler: AsyncHyperBandScheduler) -> list[tuple[float, dict]]:
    """The rungs of its single bracket, [(milestone, {trial id: recorded value})], in Ray's
    order (highest milestone first). Ray keeps them only in memory: the caller saves them."""
    return scheduler._brackets[0]._rungs


def asha_knows(scheduler: AsyncHyperBandScheduler, trial_id: str) -> bool:
    """Whether ASHA has the trial in its own book (``on_trial_add`` was called for it)."""
    return trial_id in scheduler._trial_info


def asha_forget(scheduler: AsyncHyperBandScheduler, trial_id: str) -> None:
    """Drop a removed trial from ASHA's book (Ray's own on_trial_remove leaves it there)."""
    scheduler._trial_info.pop(trial_id, None)


# ---- OptunaSearch (ray.tune.search.optuna) ----


def optuna_study(searcher: OptunaSearch) -> optuna.Study:
    """The Optuna study the searcher asks and tells."""
    return searcher._ot_study


def optuna_trial(searcher: OptunaSearch, trial_id: str) -> optuna.Trial:
    """The Optuna trial behind a Ray trial id."""
    return searcher._ot_trials[trial_id]


def optuna_relink(searcher: OptunaSearch, trial_id: str, trial: optuna.Trial) -> None:
    """Give the searcher back the Optuna trial of a Ray trial its restored state lacks."""
    searcher._ot_trials[trial_id] = trial


def optuna_knows(searcher: OptunaSearch, trial_id: str) -> bool:
    return trial_id in searcher._ot_trials


def optuna_told(searcher: OptunaSearch) -> set[str]:
    """Ray trial ids the searcher has already told the study the end of."""
    return searcher._completed_trials


# ---- Tuner.restore (ray.tune.Tuner) ----


def restored_callbacks(tuner: tune.Tuner) -> list:
    """The callbacks a restored Tuner will run with, as a list that can be added to: Ray
    restores the RunConfig pickled in the experiment's tuner.pkl, callbacks included, and
    ``Tuner.restore`` takes no new ones."""
    run_config = tuner._local_tuner.get_run_config()
    if run_config.callbacks is None:
        run_config.callbacks = []
    return run_config.callbacks


# ---- Ray Tune's experiment snapshot (experiment_state-*.json in the experiment folder) ----


def experiment_snapshot(folder: Path) -> dict[str, dict] | None:
    """Ray's newest experiment snapshot, the one ``Tuner.restore`` resumes from: trial id ->
    {status, folder (relative), last_result, order (1 for the first trial the searcher
    proposed, from Ray's experiment tag)}. Read as JSON only; its pickled fields are left
    alone. ``{}`` when there is none yet; None when it cannot be read (damaged)."""
    snapshots = sorted(Path(folder).glob("experiment_state-*.json"))
    if not snapshots:
        return {}
    try:
        state = json.loads(snapshots[-1].read_text())
        trials = {}
        for trial_json, run_json in state["trial_data"]:
            trial, run = json.loads(trial_json), json.loads(run_json)
            trials[trial["trial_id"]] = {
                "status": trial["status"],
                "folder": trial["relative_logdir"],
                "last_result": run.get("last_result") or {},
                "order": int(trial["experiment_tag"].split("_", 1)[0]),
            }
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return trials
