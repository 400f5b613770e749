"""What a search folder holds now, read and never written: its record, its trials ranked,
its finalists' runs, and whether the trials and the finalists have all run to their end.
The search asks this to know whether a stage is over; the exports are written from it."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.metrics import TIEBREAK, judged, mode_of
from data.errors import BadInput
from search import finalists
from search.finalists import Finalist
from search.record import SearchRecord, read_record
from search.results import STATUSES, Trial, read_trials


@dataclass
class Outcome:
    folder: Path
    record: SearchRecord
    trials: list[Trial]
    ranked: list[Trial]  # best first (see ``rank``)
    retrained: list[Finalist]  # best mean test return first
    searched: bool  # every trial ran to its end (or the time budget ended them)
    finished: bool  # and so did every finalist

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(t.status for t in self.trials)
        return {status: counted[status] for status in STATUSES}

    @property
    def best(self) -> Trial | None:
        return self.ranked[0] if self.ranked else None


def read_outcome(folder: Path) -> Outcome:
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder; pass results/NAME of a search")
    record = read_record(folder)
    settings = record.settings
    trials = read_trials(folder, settings.max_iters)
    ended = all(t.status != "unfinished" for t in trials)
    searched = ended and (len(trials) >= settings.num_samples or record.budget_spent)
    retrained = finalists.read(folder, record, trials)
    chosen = record.chosen
    finished = searched and (
        not settings.finalists
        or bool(retrained)
        and all(len(f.runs) == len(chosen.seeds_of(f.name)) for f in retrained)
    )
    ranked = rank(trials, settings.metric)
    return Outcome(folder, record, trials, ranked, retrained, searched, finished)


def rank(trials: list[Trial], metric: str) -> list[Trial]:
    """Best first: trials that ran the full budget before those that did not (a pruned
    trial's low-budget figure is not comparable), then by their last value of ``metric``
    with the tie-break of ``core/metrics.py`` (e.g. several policies that solve every
    episode are told apart by validation loss)."""
    sign = -1 if mode_of(metric) == "max" else 1

    def key(trial: Trial):
        last = trial.last(metric)
        score = judged(metric, last, trial.last(TIEBREAK))
        return (trial.status != "completed", sign * score if math.isfinite(last) else math.inf)

    return sorted((t for t in trials if t.history), key=key)
