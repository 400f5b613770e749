"""Finalists: the search's top configurations and the incumbent, retrained and judged apart.

The search ranks its trials on selection episodes, one training seed each, so the best of
many noisy runs is partly luck (the winner's curse). After the trials, the top K
configurations and the *incumbent* (the preset the search started from, unchanged) are
retrained from scratch on N fresh training seeds, as Ray trials of a second experiment in
``RESULTS_DIR/NAME/finalists`` (in parallel, resumable, in the dashboard and TensorBoard like
the trials), and each is rolled out on the test episodes, which nothing was selected on. The
winner is the finalist with the best mean test return. It is compared with the incumbent
paired: the same training seeds and the same test episodes, a stratified bootstrap over
seeds and episodes (core/statistics.py), so the verdict (better, worse or undecided) has the
power two unpaired intervals lack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from core import config as cfg
from core.metrics import TEST
from core.statistics import Comparison, mean_interval, paired_comparison
from search.record import FINALISTS, Chosen, SearchRecord
from search.results import Trial, read_trials
from search.settings import Settings

INCUMBENT = "incumbent"
# What a finalist seed reports of its test episodes (see core/evaluate.py).
REPORTED = (*TEST, "test/unseen_episodes", "test/success_unseen", "eval/return")


def choose(ranked: list[Trial], base: cfg.Config, count: int) -> dict[str, dict]:
    """The finalists, name -> the configuration values laid over ``base``: the incumbent (no
    values: the preset as the search started from it) and the top ``count`` trials that ran
    the full budget. A top trial whose configuration is the incumbent's is the incumbent."""
    chosen: dict[str, dict] = {INCUMBENT: {}}
    for trial in [t for t in ranked if t.status == "completed"][:count]:
        if cfg.from_flat(trial.coordinates, base) != base:
            chosen[f"trial_{trial.trial_id}"] = dict(trial.params)
    return chosen


def finalist_base(base: cfg.Config, settings: Settings) -> cfg.Config:
    """The trials' base configuration with the finalists' evaluation: selection episodes only
    at the last iteration (nothing is chosen on them any more), then the test episodes."""
    values = {"train.eval_every": settings.max_iters, "train.test_episodes": settings.test_episodes}
    return cfg.from_flat(values, base, where="finalists")


def seeds_of(settings: Settings) -> list[int]:
    """Fresh training seeds: the trials all trained on ``settings.seed``."""
    return [settings.seed + 1 + i for i in range(settings.finalist_seeds)]


def experiment_of(folder: Path, record: SearchRecord) -> Path:
    """Where the finalists the record names run (their first round)."""
    return folder / (record.chosen.folder if record.chosen else FINALISTS)


@dataclass
class Finalist:
    name: str
    values: dict  # laid over the search's base configuration
    search_figure: float  # what the search saw: its trial's last eval/return (or NaN)
    runs: dict[int, dict]  # training seed -> the last result of a run that finished
    returns: dict[int, list[float]] = field(default_factory=dict)  # seed -> each test episode's

    def interval(self, metric: str) -> tuple[float, float]:
        return mean_interval([run.get(metric, math.nan) for run in self.runs.values()])

    @property
    def gap(self) -> float:
        """Test return minus the search's own figure for this configuration."""
        return self.interval("test/return")[0] - self.search_figure


def read(folder: Path, record: SearchRecord, trials: list[Trial]) -> list[Finalist]:
    """The finalists a search chose (its record) with the runs that finished, best mean test
    return first (finalists with no finished run last)."""
    if record.chosen is None:
        return []
    max_iters = record.settings.max_iters
    runs = [
        run
        for name in record.chosen.experiments()
        if (folder / name).is_dir()
        for run in read_trials(folder / name, max_iters)
    ]
    base = record.base_config
    retrained = []
    for name, values in record.chosen.configs.items():
        mine = [r for r in runs if r.params.get("finalist") == name and r.status == "completed"]
        finished = {int(run.params["train.seed"]): run.history[-1] for run in mine}
        returns = {int(run.params["train.seed"]): run.tested() for run in mine}
        returns = {seed: figures for seed, figures in returns.items() if figures}
        figure = search_figure(name, trials, base)
        retrained.append(Finalist(name, values, figure, finished, returns))
    return sorted(retrained, key=lambda f: -mean_or(f.interval("test/return")[0]))


def trial_of(name: str, trials: list[Trial], base: cfg.Config) -> Trial | None:
    """A finalist's trial in the search (the incumbent's: the trial with the preset's own
    values, if the search ran one; a trial whose values were never written down is not taken
    for it)."""
    for trial in trials:
        if name == INCUMBENT:
            known = trial.history and trial.coordinates
            if known and cfg.from_flat(trial.coordinates, base) == base:
                return trial
        elif name == f"trial_{trial.trial_id}":
            return trial
    return None


def search_figure(name: str, trials: list[Trial], base: cfg.Config) -> float:
    """The return the search saw for a finalist on the selection episodes, to set beside its
    test return: its trial's last eval/return."""
    trial = trial_of(name, trials, base)
    return trial.last("eval/return") if trial else math.nan


def costliest_first(
    runs: dict[str, list[int]], trials: list[Trial], base: cfg.Config
) -> dict[str, list[int]]:
    """The finalists' runs, the costliest finalist first (its trial's time an iteration; one
    whose trial is unknown last). Ray starts a grid's runs seed by seed, finalist by finalist
    in this order: a slow finalist's last seed then starts two thirds of the way in and runs
    beside the others' last seeds, instead of running alone at the end (the longest job
    first, as in LPT scheduling)."""

    def cost(name: str) -> float:
        trial = trial_of(name, trials, base)
        return trial.busy_s / trial.iterations if trial and trial.iterations else 0.0

    return dict(sorted(runs.items(), key=lambda item: -cost(item[0])))


def mean_or(value: float, default: float = -math.inf) -> float:
    return value if math.isfinite(value) else default


def compared(winner: Finalist, incumbent: Finalist) -> Comparison | None:
    """The winner against the incumbent, paired on the seeds and test episodes both ran (each
    episode's test return), or None where fewer than two seeds have them."""
    common = set(winner.returns) & set(incumbent.returns)
    if len(common) < 2:
        return None
    return paired_comparison(winner.returns, incumbent.returns)


def beats(winner: Finalist, incumbent: Finalist, metric: str = "test/return") -> bool:
    """Without each episode's figures (a search of an earlier version): whether the winner is
    better beyond both 95% intervals over seeds (they do not overlap)."""
    (w, w_half), (i, i_half) = winner.interval(metric), incumbent.interval(metric)
    return all(map(math.isfinite, (w, w_half, i, i_half))) and w - w_half > i + i_half


def race(retrained: list[Finalist], chosen: Chosen, most: int) -> dict[str, list[int]] | None:
    """The next round of the race (SMAC's intensifier): one more seed for the winner and the
    incumbent, and for each other finalist whose mean is within the winner's interval, while
    the winner's paired verdict against the incumbent is undecided and they have fewer than
    ``most`` seeds; None when it is decided or the budget is spent."""
    winner = retrained[0]
    incumbent = next(f for f in retrained if f.name == INCUMBENT)
    if winner is incumbent:
        return None
    verdict = compared(winner, incumbent)
    if verdict is not None and verdict.verdict != "undecided":
        return None
    seeds = chosen.seeds_of(winner.name)
    if len(seeds) >= most:
        return None
    # Within the winner's interval: its mean less the lower half of the paired interval.
    mean = winner.interval("test/return")[0]
    close = mean - (verdict.difference - verdict.low) if verdict else -math.inf
    racing = [winner.name, INCUMBENT] + [
        f.name
        for f in retrained
        if f not in (winner, incumbent) and f.interval("test/return")[0] >= close
    ]
    following = max(s for name in racing for s in chosen.seeds_of(name)) + 1
    return {name: [following] for name in racing}
