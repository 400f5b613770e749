"""Read a search folder back from the files Ray Tune wrote: one record per trial.

Only JSON is read (Ray's experiment snapshot, each trial's ``params.json`` and
``result.json``): no pickle, so exporting a folder someone handed you runs no code from it.
A trial restored from an older checkpoint may report an iteration twice; the last report of
each iteration is the one kept.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.config import COORDINATES
from core.evaluate import TESTED
from core.metrics import TIME
from data.errors import BadInput
from search.upstream import experiment_snapshot

STATUSES = ("completed", "pruned", "error", "unfinished")


@dataclass
class Trial:
    trial_id: str
    folder: Path
    params: dict  # the configuration values this trial set
    coordinates: dict  # its params.json as Ray wrote it (earlier versions: with space.* too)
    history: list[dict] = field(default_factory=list)  # one result per iteration, in order
    status: str = "unfinished"
    failures: list[str] = field(default_factory=list)  # the reason of each failure, in order

    @property
    def error(self) -> str:
        """The last failure's reason ('' if none): why an errored trial ended."""
        return self.failures[-1] if self.failures else ""

    @property
    def iterations(self) -> int:
        return int(self.history[-1][TIME]) if self.history else 0

    def last(self, metric: str) -> float:
        return value(self.history[-1], metric) if self.history else math.nan

    def at(self, iteration: int, metric: str) -> float:
        for result in self.history:
            if result[TIME] == iteration:
                return value(result, metric)
        return math.nan

    def best(self, metric: str, mode: str) -> float:
        values = [v for v in (value(r, metric) for r in self.history) if math.isfinite(v)]
        if not values:
            return math.nan
        return max(values) if mode == "max" else min(values)

    @property
    def busy_s(self) -> float:
        return sum(float(r.get("time_this_iter_s") or 0.0) for r in self.history)

    @property
    def node(self) -> str:
        return str(self.history[-1].get("node_id", "")) if self.history else ""

    def tested(self, figure: str = "return") -> list[float] | None:
        """Each test episode's ``figure``, in order (core/evaluate.py TESTED, beside the last
        checkpoint), or None where the run kept none (it has not ended, or an earlier version
        ran it)."""
        episodes = read_tested(self.checkpoint.parent) if self.checkpoint else None
        try:
            return [float(episode[figure]) for episode in episodes] if episodes else None
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint of the trial's last reported iteration, if Ray kept it. (A trial
        killed between writing a checkpoint and reporting it leaves a newer folder on disk
        that belongs to no reported result.)"""
        name = self.history[-1].get("checkpoint_dir_name") if self.history else None
        path = self.folder / str(name) / "checkpoint.pt"
        return path if name and path.is_file() else None


def read_tested(folder: Path) -> list[dict] | None:
    """The test episodes a run's folder kept (core/evaluate.py TESTED), each with its own
    figures; None where it kept none or the file is damaged."""
    try:
        episodes = json.loads((folder / TESTED).read_text())["episodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    whole = isinstance(episodes, list) and all(isinstance(e, dict) for e in episodes)
    return episodes if whole and episodes else None


def value(result: dict, metric: str) -> float:
    v = result.get(metric)
    return float(v) if isinstance(v, int | float) else math.nan


def read_history(path: Path) -> list[dict]:
    by_iteration: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                result = json.loads(line)
            except ValueError:  # a line cut short by a killed process
                continue
            if isinstance(result, dict) and isinstance(result.get(TIME), int):
                by_iteration[result[TIME]] = result
    return [by_iteration[i] for i in sorted(by_iteration)]


def experiment_state(folder: Path) -> dict[str, dict]:
    """Ray's newest experiment snapshot (``search.upstream.experiment_snapshot``); ``{}`` when
    there is none yet. A damaged one is bad input: read as empty, it would have a resume
    forget every saved rung and an export overwrite the tables with nothing."""
    snapshot = experiment_snapshot(folder)
    if snapshot is None:
        raise BadInput(
            f"{folder}: Ray's experiment snapshot (experiment_state-*.json) is damaged, so "
            "the search cannot be read or resumed; restore the file or start a new search"
        )
    return snapshot


EXTENSION = "more-"  # folder/more-1, more-2, ...: Ray experiments that extended a search


def experiment_folder(folder: Path, extension: int) -> Path:
    """Where the search's own Ray experiment (0) or its ``extension``-th one lives."""
    return Path(folder) / f"{EXTENSION}{extension}" if extension else Path(folder)


def experiments(folder: Path) -> list[Path]:
    """The search's own Ray experiment, then those of its extensions (``--resume
    --num-samples N``), in order."""
    extensions = Path(folder).glob(f"{EXTENSION}*")
    return [Path(folder), *sorted(extensions, key=lambda p: int(p.name[len(EXTENSION) :]))]


def read_trials(folder: Path, max_iters: int) -> list[Trial]:
    """The trials of the experiment snapshots (the search's and its extensions'). Ray's
    TERMINATED means the trial ran out its budget or the scheduler stopped it; RUNNING,
    PAUSED or PENDING in a snapshot mean the search was interrupted."""
    trials = []
    states = [(e, t, s) for e in experiments(folder) for t, s in experiment_state(e).items()]
    for experiment, trial_id, state in states:
        trial_folder = experiment / state["folder"]
        try:
            params = json.loads((trial_folder / "params.json").read_text())
        except (OSError, ValueError):
            params = {}
        history = read_history(trial_folder / "result.json")
        last = state["last_result"]
        if isinstance(last.get(TIME), int) and last[TIME] > (
            history[-1][TIME] if history else 0
        ):  # result.json is written behind the snapshot
            history.append(last)
        trial = Trial(
            trial_id=trial_id,
            folder=trial_folder,
            params={k: v for k, v in params.items() if not k.startswith(COORDINATES)},
            coordinates=params,
            history=history,
        )
        error_file = trial_folder / "error.txt"
        if error_file.exists():  # also kept when a retry from a checkpoint then succeeded
            trial.failures = failure_reasons(error_file.read_text(errors="replace"))
        if trial.iterations >= max_iters:
            trial.status = "completed"
        elif state["status"] == "ERROR":
            trial.status = "error"
        elif state["status"] == "TERMINATED":
            trial.status = "pruned"
        trials.append(trial)
    return sorted(trials, key=lambda t: t.trial_id)


FAILURE = re.compile(r"^Failure # \d+ \(occurred at .*\)$", re.MULTILINE)


def failure_reasons(text: str) -> list[str]:
    """Ray appends each failure of a trial to its error.txt under a "Failure # N" heading; the
    reason is the last line of each traceback: the exception and its message."""
    blocks = [block for block in FAILURE.split(text) if block.strip()]
    return [last_line(block) for block in blocks] or ["unknown error"]


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"
