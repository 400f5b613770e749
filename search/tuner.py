"""The search: its stages over its record. The trials (Optuna proposes, ASHA prunes, Ray Tune
runs them), then the finalists (the top configurations and the preset retrained on fresh
seeds, judged on test episodes), then the exports. Each stage is a function from the record
to the record it leaves; a resume starts at the stage the record names.

A search lives in ``RESULTS_DIR/NAME``: Ray Tune's own experiment folder (``Tuner.restore``
and ``ExperimentAnalysis`` open it), plus ``search.yaml`` (the record), ``asha_state.yaml``
(ASHA's rungs), ``optuna.journal`` (the study), ``finalists/`` (the second Ray experiment)
and the exports.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from sqlalchemy.exc import SQLAlchemyError

from core import config as cfg
from core.tracking import mlflow_uri
from data.demos import for_data
from data.errors import BadInput
from data.files import writable_folder
from search import cluster, finalists
from search.console import announce, loggers, quiet_wrong_hints
from search.experiment import fit, run_name, trainable_for, trial_name
from search.export import export
from search.outcome import Outcome, read_outcome
from search.placement import Placement, plan
from search.progress import ProgressLines
from search.record import (
    FINALISTS,
    SETTINGS_FILE,
    Chosen,
    SearchRecord,
    WallClock,
    read_record,
    search_folder,
    write_record,
)
from search.results import experiment_folder, experiment_state, experiments, read_trials
from search.scheduler import TimeBudget, forget_unknown_trials, make_scheduler
from search.searcher import PruningAwareOptunaSearch, make_sampler
from search.settings import Settings, base_config, check
from search.spaces import point_of, space

JOURNAL = "optuna.journal"  # the study, live, unless --storage names another place
WARM_START = 3  # configurations a --warm-start takes from the earlier search


@dataclass
class Run:
    """What the stages of one run of a search share: where it lives, what a trial is given,
    the demonstrations, its wall clock, Ray's results of each stage that ran, and whether it
    prints a line a trial (else Ray's own tables)."""

    folder: Path
    placement: Placement
    demos: object
    clock: WallClock
    grids: dict
    lines: bool = True

    def progress(self, stage: str, total: int, max_iters: int, metric: str, mode: str):
        return ProgressLines(stage, total, max_iters, metric, mode) if self.lines else None


def run(
    settings: Settings | None,
    results_dir: Path,
    name: str,
    resume: bool = False,
    address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    max_concurrent: int | None = None,
    dashboard_host: str = cluster.LOCALHOST,
    extend_to: int | None = None,
    ray_progress: bool = False,
) -> tuple[Outcome, dict]:
    """Run (or resume) a search from the stage its record names to the end, and export it.
    Returns what was exported and Ray's result grids of the stages that ran (``results``,
    ``finalist_results``). ``extend_to`` (with ``resume``): run trials until the search holds
    that many. ``ray_progress``: Ray's own status tables instead of a line a trial."""
    folder = search_folder(results_dir, name)
    record = resumed(folder, extend_to) if resume else started(folder, results_dir, settings)
    mps = address is None and cluster.mps_available()
    if address is None:  # the flags against this machine, before Ray starts
        plan(cluster.local_resources(), cpus_per_trial, gpus_per_trial, max_concurrent, mps)
    quiet_wrong_hints()
    grids: dict = {}
    with cluster.session(address, dashboard_host) as url:
        if address:
            cluster.check_shared(results_dir)
        settings = record.settings
        base = base_config(settings)
        # Built before any trial starts: on every core of this machine, saying how far it is.
        demos = for_data(base.data, log=print, jobs=os.cpu_count() or 1)
        resources = cluster.resources()
        placement = plan(resources, cpus_per_trial, gpus_per_trial, max_concurrent, mps)
        base = placed(base, placement)
        announce(settings, folder, placement, url, point_of(settings.space, base) is not None)
        folder.mkdir(parents=True, exist_ok=True)
        record = dataclasses.replace(
            record,
            base=cfg.to_dict(base),
            placement=dataclasses.asdict(placement),
            cpus=resources.get("CPU", 0.0),
        )
        with WallClock(folder, record) as clock:
            search = Run(folder, placement, demos, clock, grids, lines=not ray_progress)
            for stage, step in STAGES.items():
                if clock.record.stage == stage:
                    clock.write(step(search, clock.record))
    return export(folder), grids


def started(folder: Path, results_dir: Path, settings: Settings) -> SearchRecord:
    """The record of a new search, after every check that needs no Ray. A folder that holds
    only the record of a search that failed before any trial started is started afresh."""
    if folder.exists() and not never_started(folder):
        raise BadInput(
            f"{folder} already exists: pass --resume to continue that search, "
            "or choose another --name"
        )
    check(settings)
    if settings.storage:  # a database that cannot be opened: refused before Ray starts
        study_storage(settings, folder)
    if settings.warm_start:  # refused before Ray starts if it does not fit
        warm_start_points(Path(settings.warm_start), settings.space, base_config(settings))
    writable_folder(results_dir, "--results-dir").mkdir(parents=True, exist_ok=True)
    return SearchRecord(settings)


def resumed(folder: Path, extend_to: int | None) -> SearchRecord:
    """The record of the search in ``folder`` to continue (extended to ``extend_to`` trials
    when given); refused before any change if it is damaged."""
    if not (folder / SETTINGS_FILE).exists():
        raise BadInput(
            f"there is no search {folder.name!r} in {folder.parent} to resume; start it "
            "without --resume"
        )
    record = read_record(folder)
    for experiment in experiments(folder):
        experiment_state(experiment)
    return extended(folder, record, extend_to) if extend_to is not None else record


def never_started(folder: Path) -> bool:
    """Whether ``folder`` holds a search's record and nothing else of it: it failed before Ray
    ran anything (a storage that would not open, a cluster that went away)."""
    return (folder / SETTINGS_FILE).is_file() and not (folder / "tuner.pkl").exists()


def extended(folder: Path, record: SearchRecord, total: int) -> SearchRecord:
    """The record of a search extended to ``total`` trials: its next extension runs the
    missing trials, then finalists are chosen anew among all of them (in a folder of their
    own; the earlier finalists' runs stay where they are)."""
    settings = record.settings
    trials = read_trials(folder, settings.max_iters)
    if any(t.status == "unfinished" for t in trials) or len(trials) < settings.num_samples:
        raise BadInput(
            f"{folder} has not finished its {settings.num_samples} trials: resume it without "
            "--num-samples first, then extend it"
        )
    if total <= len(trials):
        raise BadInput(
            f"--num-samples {total} is not more than the {len(trials)} trials {folder} holds: "
            "pass more to extend it"
        )
    record = dataclasses.replace(
        record,
        settings=dataclasses.replace(settings, num_samples=total),
        stage="trials",
        chosen=None,
        search_wall_s=None,
        extensions=record.extensions + 1,
    )
    write_record(folder, record)
    return record


def placed(base: cfg.Config, placement: Placement) -> cfg.Config:
    """The base configuration with the trial's CPU thread count. Recorded, and so in
    best_config.yaml: the thread count changes float sums, and with it a retrain on the same
    machine repeats the trial's numbers exactly. The device stays ``auto`` there, so the
    file retrains anywhere."""
    threads = max(1, math.floor(placement.cpus_per_trial))
    return cfg.override(base, "train.threads", threads, "placement")


# ---- the stages ----


def run_trials(search: Run, record: SearchRecord) -> SearchRecord:
    """The trials, in the search's Ray experiment (``more-K`` for its K-th extension), restored
    where an interrupted one lies. When every trial has ended, the finalists are chosen (the
    next stage), or with none asked for, the search is done."""
    settings, base, folder = record.settings, record.base_config, search.folder
    experiment = experiment_folder(folder, record.extensions)
    if (experiment / "tuner.pkl").exists():
        known = {t for e in experiments(folder) for t in experiment_state(e)}
        forget_unknown_trials(folder, known)
    earlier = sum(len(experiment_state(e)) for e in experiments(folder) if e != experiment)
    total = settings.num_samples - earlier
    search.grids["results"] = fit(
        experiment,
        trainable_for(base, search.demos, search.placement),
        lambda: trials_tune_config(settings, folder, search.placement, base, record.extensions),
        settings.max_failures,
        callbacks(settings, folder),
        search.progress("trials", total, settings.max_iters, settings.metric, settings.mode),
        TimeBudget(folder, settings.time_budget) if settings.time_budget else None,
    )
    if settings.time_budget and search.clock.wall_s() >= settings.time_budget:
        record = search.clock.write(dataclasses.replace(record, budget_spent=True))
        print(f"\nthe time budget ({settings.time_budget:g} s) ended the trials")
    outcome = read_outcome(folder)
    if not outcome.searched:
        return record
    if not settings.finalists:
        return dataclasses.replace(record, stage="done")
    return dataclasses.replace(
        record,
        stage="finalists",
        search_wall_s=search.clock.wall_s(),
        chosen=choose_finalists(outcome, base, record.extensions),
    )


def trials_tune_config(
    settings: Settings, folder: Path, placement: Placement, base: cfg.Config, extension: int
) -> dict:
    """The searcher and scheduler of the search's trials, or with ``extension`` k > 0 of its
    k-th extension: the same Optuna study (TPE sees every earlier trial) and ASHA's saved
    rungs, for the trials the search was extended by."""
    # The preset's own values are the first trial (Optuna enqueues them), so TPE starts from
    # what is known to work, and the incumbent has a figure in the search's own terms; an
    # earlier search's best configurations follow (--warm-start).
    first = []
    if not extension:
        incumbent = point_of(settings.space, base)
        first = [incumbent] if incumbent else []
        if settings.warm_start:
            first += warm_start_points(Path(settings.warm_start), settings.space, base)
    done = len(read_trials(folder, settings.max_iters)) if extension else 0
    searcher = PruningAwareOptunaSearch(
        space(settings.space),
        make_sampler(settings.searcher, settings.seed + extension, settings.num_samples),
        settings.metric,
        settings.mode,
        settings.max_iters,
        points_to_evaluate=first or None,
        storage=study_storage(settings, folder),
        study_name=settings.study_name or folder.name,
    )
    scheduler = make_scheduler(
        settings.scheduler,
        folder,
        settings.max_iters,
        settings.grace_period,
        settings.reduction_factor,
    )
    tune_config = tune.TuneConfig(
        metric=settings.metric,
        mode=settings.mode,
        search_alg=ConcurrencyLimiter(searcher, max_concurrent=placement.max_concurrent),
        scheduler=scheduler,
        num_samples=settings.num_samples - done,
        # A reused actor skips process start-up and imports: on short trials this is most of
        # the per-trial overhead (28% against 81% busy CPUs, BENCHMARKS.md).
        reuse_actors=True,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
    )
    return {"tune_config": tune_config}


def choose_finalists(outcome: Outcome, base: cfg.Config, extension: int) -> Chosen:
    """The finalists of a finished search and their seeds, recorded before they start, so a
    resume retrains the same ones."""
    settings = outcome.record.settings
    configs = finalists.choose(outcome.ranked, base, settings.finalists)
    seeds = finalists.seeds_of(settings)
    print(f"\nfinalists: {', '.join(configs)}, each retrained on seeds {seeds}")
    return Chosen(configs, seeds, f"{FINALISTS}-{extension}" if extension else FINALISTS)


def run_finalists(search: Run, record: SearchRecord) -> SearchRecord:
    """The finalists' runs: a Ray experiment in the search folder, each finalist on each of
    its seeds; then, while the winner's verdict against the incumbent is undecided and the
    race's budget allows (``--race-seeds``), a round more with one seed more for the finalists
    still racing, each round an experiment of its own. Done when the last round has ended."""
    settings = record.settings
    base = finalists.finalist_base(record.base_config, settings)
    while True:
        chosen = record.chosen
        round_ = len(chosen.races)
        runs = {name: chosen.seeds for name in chosen.configs} if not round_ else chosen.races[-1]
        runs = finalists.costliest_first(
            runs, read_outcome(search.folder).ranked, record.base_config
        )
        search.grids["finalist_results"] = fit(
            search.folder / chosen.experiments()[-1],
            trainable_for(base, search.demos, search.placement, finalists=chosen.configs),
            lambda runs=runs: finalist_tune_config(runs, search.placement),
            settings.max_failures,
            callbacks(settings, search.folder),
            search.progress(
                "finalists" if not round_ else f"race round {round_}",
                sum(len(seeds) for seeds in runs.values()),
                settings.max_iters,
                "test/return",
                "max",
            ),
        )
        outcome = read_outcome(search.folder)
        if not outcome.finished:
            return record
        following = finalists.race(outcome.retrained, chosen, settings.race_seeds)
        if following is None:
            return dataclasses.replace(record, stage="done")
        print(f"\nundecided: race round {round_ + 1} adds seed(s) {following}")
        raced = dataclasses.replace(chosen, races=[*chosen.races, following])
        record = search.clock.write(dataclasses.replace(record, chosen=raced))


def finalist_tune_config(runs: dict[str, list[int]], placement: Placement) -> dict:
    """The finalists' runs of one round as a grid: each finalist on each of the round's seeds
    (a round gives all its finalists the same seeds)."""
    seeds = sorted({seed for round_seeds in runs.values() for seed in round_seeds})
    return {
        "param_space": {
            "finalist": tune.grid_search(list(runs)),
            "train.seed": tune.grid_search(seeds),
        },
        "tune_config": tune.TuneConfig(
            max_concurrent_trials=placement.max_concurrent,
            reuse_actors=True,
            trial_name_creator=run_name,
            trial_dirname_creator=run_name,
        ),
    }


STAGES = {"trials": run_trials, "finalists": run_finalists}


# ---- what the trials are given ----


def study_storage(settings: Settings, folder: Path) -> optuna.storages.BaseStorage:
    """Where Optuna keeps the study, live: the user's URL (a database optuna reads, e.g.
    sqlite:///study.db), or a journal file in the search folder. optuna-dashboard and
    optuna.load_study open either while the search runs."""
    if not settings.storage:
        return JournalStorage(JournalFileBackend(str((folder / JOURNAL).resolve())))
    try:  # Ray's OptunaSearch takes a storage object, not a URL
        return optuna.storages.get_storage(settings.storage)
    except (ValueError, ImportError, SQLAlchemyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise BadInput(
            f"--storage {settings.storage!r} cannot be opened ({first}); pass a database URL "
            "optuna reads, e.g. sqlite:///study.db, or leave it out for the journal file"
        ) from None


def warm_start_points(other: Path, space_name: str, base: cfg.Config) -> list[dict]:
    """The coordinates of the best configurations of an earlier search in the same space:
    its finalists (best first) or else its top trials that ran the full budget."""
    if not (other / "search.yaml").is_file():
        raise BadInput(f"--warm-start {other} is not a search folder; pass results/NAME")
    outcome = read_outcome(other)
    if outcome.record.settings.space != space_name:
        theirs = outcome.record.settings.space
        raise BadInput(
            f"--warm-start {other} searched the {theirs} space, not {space_name}: its points "
            f"mean nothing here; pass --space {theirs}"
        )
    values = [f.values for f in outcome.retrained if f.runs and f.name != finalists.INCUMBENT]
    if not values:
        values = [t.params for t in outcome.ranked if t.status == "completed"]
    points = [point_of(space_name, cfg.from_flat(v, base)) for v in values[:WARM_START]]
    return [p for p in points if p is not None]


def callbacks(settings: Settings, folder: Path) -> list:
    """What Ray writes of every trial: its files (search/console.py), and with --track a
    tracked run of it (Ray's own logger callbacks)."""
    if settings.track == "mlflow":
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        return [*loggers(), MLflowLoggerCallback(mlflow_uri(folder), experiment_name=folder.name)]
    if settings.track == "wandb":
        from ray.air.integrations.wandb import WandbLoggerCallback

        directory = os.environ.get("WANDB_DIR") or str(folder.resolve())
        return [*loggers(), WandbLoggerCallback(project=folder.name, dir=directory)]
    return loggers()
