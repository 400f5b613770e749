"""The scheduler: ASHA (asynchronous successive halving) or FIFO.

Ray does not save ASHA's rungs with the experiment: after ``Tuner.restore`` the scheduler is
the fresh object pickled at the start, every rung is empty, and the first trials to reach a
rung would pass it unjudged. This ASHA writes its rungs and its stop decisions to a file in
the search folder after every change and reads them back on first use after a
restore, so pruning goes on as it would have: a trial stopped just before the driver died
(Ray's experiment snapshot may still call it running) is stopped again when it reports.

The file is YAML, not JSON: on a resume Ray copies every ``*.json`` and ``*.pkl`` of the
experiment folder into its staging folder and later uploads those copies back over the
originals, which would roll this state back.

Rollout returns tie: early on most are exactly 0, later every policy that solves all
layouts scores the same. Ray's ASHA stops a trial only when it is strictly below the rung's
cutoff, so ties never stop and a search of zeros prunes nothing. The scheduler judges the
metric with the tie-break of ``core/metrics.py``, as the exports rank trials.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.tune import Stopper
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from core.metrics import TIEBREAK, TIME, judged
from data.files import write_atomically
from search.record import read_record
from search.upstream import asha_forget, asha_knows, asha_rungs

STATE_FILE = "asha_state.yaml"


class PersistentASHA(AsyncHyperBandScheduler):
    def __init__(self, folder: Path, max_t: int, grace_period: int, reduction_factor: float):
        super().__init__(
            time_attr=TIME,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            brackets=1,
        )
        self.max_t = max_t
        self.state_path = str(Path(folder) / STATE_FILE)
        self.pruned: dict[str, int] = {}  # trial id -> the iteration it was stopped at
        self._loaded = False  # pickled False: a restored scheduler reads the file once

    @property
    def rungs(self) -> list[tuple[float, dict]]:
        return asha_rungs(self)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        state = read_state(Path(self.state_path))
        if state is None:
            return
        saved = {int(m): recorded for m, recorded in state["rungs"].items()}
        for milestone, recorded in self.rungs:
            recorded.update(saved.get(int(milestone), {}))
        self.pruned.update(state["pruned"])

    def _save(self) -> None:
        rungs = {str(int(m)): recorded for m, recorded in self.rungs}
        write_state(Path(self.state_path), {"rungs": rungs, "pruned": self.pruned})

    def on_trial_add(self, tune_controller, trial) -> None:
        self._load()
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._load()
        if not asha_knows(self, trial.trial_id):  # restored before this scheduler saw it
            super().on_trial_add(tune_controller, trial)
        if trial.trial_id in self.pruned:
            return TrialScheduler.STOP
        action = super().on_trial_result(tune_controller, trial, self.judged(result))
        if action == TrialScheduler.STOP and result.get(TIME, 0) < self.max_t:
            self.pruned[trial.trial_id] = int(result[TIME])
        self._save()
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._load()
        if asha_knows(self, trial.trial_id):
            super().on_trial_complete(tune_controller, trial, self.judged(result))
        self._save()

    def judged(self, result: dict) -> dict:
        """The result with its metric shifted by the tie-break (see the module docstring)."""
        value = result.get(self.metric)
        if value is None:
            return result
        return {**result, self.metric: judged(self.metric, value, result.get(TIEBREAK))}

    def on_trial_remove(self, tune_controller, trial) -> None:
        asha_forget(self, trial.trial_id)


def forget_unknown_trials(folder: Path, known: set[str]) -> None:
    """Before a resume: drop the rung entries of trials the experiment snapshot does not hold.
    Ray restores only the trials of its last snapshot and suggests the others afresh; their
    old figures would otherwise stay in the rungs as ghosts."""
    path = Path(folder) / STATE_FILE
    state = read_state(path)
    if state is None:
        return
    state["rungs"] = {
        m: {t: v for t, v in recorded.items() if t in known}
        for m, recorded in state["rungs"].items()
    }
    state["pruned"] = {t: i for t, i in state["pruned"].items() if t in known}
    write_state(path, state)


def read_state(path: Path) -> dict | None:
    """{"rungs": {milestone: {trial id: value}}, "pruned": {trial id: iteration}}, or None."""
    return yaml.safe_load(path.read_text()) if path.exists() else None


def write_state(path: Path, state: dict) -> None:
    write_atomically(path, yaml.safe_dump(state).encode())


def make_scheduler(
    name: str, folder: Path, max_t: int, grace_period: int, reduction_factor: float
) -> TrialScheduler:
    """``asha`` or ``fifo`` (search/settings.py checks the name and the rungs)."""
    if name == "fifo":
        return FIFOScheduler()
    return PersistentASHA(folder, max_t, grace_period, reduction_factor)


class TimeBudget(Stopper):
    """Stops every trial once the search's trials have taken ``budget_s`` of wall time, as its
    record counts it (search/record.py WallClock: over every run of the search, so a resume
    spends what is left, not a new budget)."""

    def __init__(self, folder: Path, budget_s: float):
        self.folder, self.budget_s = Path(folder), budget_s

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return read_record(self.folder).wall_s >= self.budget_s
