"""The search: assemble Ray Tune's Tuner (trainable, searcher, scheduler, resources) and run
it, or restore an interrupted one; then its finalists; then export what it found.

A search lives in ``RESULTS_DIR/NAME``: Ray Tune's own experiment folder (``Tuner.restore``
and ``ExperimentAnalysis`` open it), plus ``search.yaml`` (the settings, the finalists chosen
and the wall time spent, which a resume reuses), ``asha_state.yaml`` (ASHA's rungs),
``optuna.journal`` (the study), ``finalists/`` (the second Ray experiment) and the exports.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import ray
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from ray import tune
from ray.tune import ResultGrid
from ray.tune.search import ConcurrencyLimiter

from core import config as cfg
from core.tracking import mlflow_uri
from core.trainable import train_trial
from data.demos import DATA_CACHE, for_data
from data.errors import BadInput
from data.files import writable_folder
from search import cluster, finalists
from search.console import announce, loggers, quiet_wrong_hints, restore_loggers
from search.export import export, rank
from search.record import WallClock, read_record, search_folder, write_record
from search.results import experiment_folder, experiment_state, experiments, read_trials
from search.scheduler import forget_unknown_trials, make_scheduler
from search.searcher import PruningAwareOptunaSearch, make_sampler
from search.settings import Settings, base_config, check
from search.spaces import point_of, space

# Keeping two checkpoints a trial makes Ray snapshot the experiment at least every second
# checkpoint (so a resume loses little); Ray warns about that rate, which is intended here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# The trials' loggers are given explicitly (search/console.py loggers()).
os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
JOURNAL = "optuna.journal"  # the study, live, unless --storage names another place
WARM_START = 3  # configurations a --warm-start takes from the earlier search


def make_tuner(
    settings: Settings,
    folder: Path,
    placement: cluster.Placement,
    demos,
    base: cfg.Config,
    extension: int = 0,
) -> tune.Tuner:
    """The search's Tuner, or with ``extension`` k > 0 that of its k-th extension: a Ray
    experiment of its own in ``folder/more-k`` for the trials the search was extended by,
    with the same Optuna study (TPE sees every earlier trial) and ASHA's saved rungs."""
    trainable = trainable_for(base, demos, placement)
    experiment = experiment_folder(folder, extension)
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
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=settings.metric,
            mode=settings.mode,
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=placement.max_concurrent),
            scheduler=scheduler,
            num_samples=settings.num_samples - done,
            # A reused actor skips process start-up and imports: on short trials this is
            # most of the per-trial overhead (DESIGN.md: 28% vs 81% busy CPUs).
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=experiment.name,
            storage_path=str(experiment.parent.resolve()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=1,  # the live trial table, without every trial's config and result box
            callbacks=[*loggers(), *tracking(settings.track, folder)],
        ),
    )


def study_storage(settings: Settings, folder: Path):
    """Where Optuna keeps the study, live: the user's URL, or a journal file in the search
    folder (optuna-dashboard and optuna.load_study open either while the search runs)."""
    if settings.storage:
        return settings.storage
    return JournalStorage(JournalFileBackend(str((folder / JOURNAL).resolve())))


def warm_start_points(other: Path, space_name: str, base: cfg.Config) -> list[dict]:
    """The coordinates of the best configurations of an earlier search in the same space:
    its finalists (best first) or else its top trials that ran the full budget."""
    if not (other / "search.yaml").is_file():
        raise BadInput(f"--warm-start {other} is not a search folder; pass results/NAME")
    other_settings, record = read_record(other)
    if other_settings.space != space_name:
        raise BadInput(
            f"--warm-start {other} searched the {other_settings.space} space, not {space_name}: "
            f"its points mean nothing here; pass --space {other_settings.space}"
        )
    other_base = cfg.from_dict(record["base"], where=f"{other} base configuration")
    trials = read_trials(other, other_settings.max_iters)
    retrained = finalists.read(other, record, other_settings, trials, other_base)
    values = [f.values for f in retrained if f.runs and f.name != finalists.INCUMBENT]
    if not values:
        ranked = rank(trials, other_settings.metric)
        values = [t.params for t in ranked if t.status == "completed"]
    points = [point_of(space_name, cfg.from_flat(v, base)) for v in values[:WARM_START]]
    return [p for p in points if p is not None]


def tracking(track: str, folder: Path) -> list:
    """Ray's own logger callbacks for --track: every trial a tracked run of the search."""
    if track == "mlflow":
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        return [MLflowLoggerCallback(mlflow_uri(folder), experiment_name=folder.name)]
    if track == "wandb":
        from ray.air.integrations.wandb import WandbLoggerCallback

        directory = os.environ.get("WANDB_DIR") or str(folder.resolve())
        return [WandbLoggerCallback(project=folder.name, dir=directory)]
    return []


def trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def placed(base: cfg.Config, placement: cluster.Placement) -> cfg.Config:
    """The base configuration with the trial's CPU thread count. Recorded, and so in
    best_config.yaml: the thread count changes float sums, and with it a retrain on the same
    machine repeats the trial's numbers exactly. The device stays ``auto`` there, so the
    file retrains anywhere."""
    threads = max(1, math.floor(placement.cpus_per_trial))
    return cfg.override(base, "train.threads", threads, "placement")


def trainable_for(base: cfg.Config, demos, placement: cluster.Placement):
    base = cfg.override(base, "train.device", placement.device, "placement")
    return tune.with_resources(
        tune.with_parameters(
            train_trial, demos=demos, base=cfg.to_dict(base), cache=str(DATA_CACHE.resolve())
        ),
        {"cpu": placement.cpus_per_trial, "gpu": placement.gpus_per_trial},
    )


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
) -> dict:
    """Run (or resume) a search, then its finalists, and export it; returns what ``export``
    returns, with ``finished`` telling whether every trial and finalist ran to its end.
    ``extend_to`` (with ``resume``): run trials until the search holds that many."""
    folder = search_folder(results_dir, name)
    if resume:
        if not (folder / "tuner.pkl").exists():
            raise BadInput(
                f"there is no search {name!r} in {results_dir} to resume; start it without --resume"
            )
        settings, record = read_record(folder)
        for experiment in experiments(folder):  # damaged snapshots: refused before any change
            experiment_state(experiment)
        if extend_to is not None:
            settings, record = extended(folder, settings, record, extend_to)
    else:
        if folder.exists():
            raise BadInput(
                f"{folder} already exists: pass --resume to continue that search, "
                "or choose another --name"
            )
        check(settings)
        if settings.warm_start:  # refused before Ray starts if it does not fit
            warm_start_points(Path(settings.warm_start), settings.space, base_config(settings))
        writable_folder(results_dir, "--results-dir").mkdir(parents=True, exist_ok=True)
        record = {"settings": settings.to_dict(), "wall_s": 0.0}
    base = base_config(settings)
    mps = address is None and cluster.mps_available()
    if address is None:
        cluster.plan(cluster.local_resources(), cpus_per_trial, gpus_per_trial, max_concurrent, mps)
    quiet_wrong_hints()
    started_here = not ray.is_initialized()  # a caller's own Ray session is left running
    url = cluster.start(address, dashboard_host) if started_here else ""
    grids = {}
    try:
        if address:
            cluster.check_shared(results_dir)
        demos = for_data(base.data)
        placement = cluster.plan(
            ray.cluster_resources(),
            cpus_per_trial,
            gpus_per_trial,
            max_concurrent,
            mps,
        )
        base = placed(base, placement)
        announce(settings, folder, placement, url, point_of(settings.space, base) is not None)
        folder.mkdir(parents=True, exist_ok=True)
        record.update(
            base=cfg.to_dict(base),
            placement=dataclasses.asdict(placement),
            cpus=ray.cluster_resources().get("CPU", 0.0),
        )
        with WallClock(folder, record):
            if "finalists" not in record:
                extension = record.get("extensions", 0)
                grids["results"] = search_stage(
                    settings, folder, placement, demos, base, resume, extension
                )
                if export(folder)["searched"] and settings.finalists:
                    record["search_wall_s"] = record["wall_s"]
                    record["finalists"] = choose_finalists(folder, settings, base, extension)
                    write_record(folder, record)
            if "finalists" in record:
                grids["finalist_results"] = finalists_stage(
                    settings, folder, record, placement, demos, base
                )
    finally:
        if started_here:
            cluster.stop()
    return {**export(folder), **grids}


def search_stage(
    settings: Settings, folder: Path, placement, demos, base, resume: bool, extension: int
) -> ResultGrid:
    """The trials: searcher, scheduler, one Ray experiment in ``folder`` (or, extended, in
    ``folder/more-k``), restored where an interrupted one is."""
    experiment = experiment_folder(folder, extension)
    if resume and (experiment / "tuner.pkl").exists():
        known = {t for e in experiments(folder) for t in experiment_state(e)}
        forget_unknown_trials(folder, known)
        tuner = tune.Tuner.restore(
            str(experiment.resolve()),
            trainable=trainable_for(base, demos, placement),
            resume_unfinished=True,
            resume_errored=True,
        )
        restore_loggers(tuner)
    else:
        tuner = make_tuner(settings, folder, placement, demos, base, extension)
    return tuner.fit()


def extended(folder: Path, settings: Settings, record: dict, total: int):
    """The settings and record of a search extended to ``total`` trials: its next extension
    runs the missing trials, then finalists are chosen anew among all of them (in a folder of
    their own; the earlier finalists' runs stay where they are)."""
    trials = read_trials(folder, settings.max_iters)
    unfinished = [t for t in trials if t.status == "unfinished"]
    if unfinished or len(trials) < settings.num_samples:
        raise BadInput(
            f"{folder} has not finished its {settings.num_samples} trials: resume it without "
            "--num-samples first, then extend it"
        )
    if total <= len(trials):
        raise BadInput(
            f"--num-samples {total} is not more than the {len(trials)} trials {folder} holds: "
            "pass more to extend it"
        )
    settings = dataclasses.replace(settings, num_samples=total)
    record = {
        **{k: v for k, v in record.items() if k not in ("finalists", "search_wall_s")},
        "settings": settings.to_dict(),
        "extensions": record.get("extensions", 0) + 1,
    }
    write_record(folder, record)
    return settings, record


def choose_finalists(folder: Path, settings: Settings, base: cfg.Config, extension: int) -> dict:
    """The finalists of a finished search and their seeds, recorded before they start, so a
    resume retrains the same ones."""
    ranked = rank(read_trials(folder, settings.max_iters), settings.metric)
    chosen = finalists.choose(ranked, base, settings.finalists)
    seeds = finalists.seeds_of(settings)
    print(f"\nfinalists: {', '.join(chosen)}, each retrained on seeds {seeds}")
    name = f"{finalists.FOLDER}-{extension}" if extension else finalists.FOLDER
    return {"configs": chosen, "seeds": seeds, "folder": name}


def finalists_stage(settings, folder: Path, record: dict, placement, demos, base) -> ResultGrid:
    """The finalists' runs: a second Ray experiment in ``folder/finalists`` (``finalists-K``
    after the K-th extension)."""
    chosen, seeds = record["finalists"]["configs"], record["finalists"]["seeds"]
    base = cfg.override(finalists.finalist_base(base, settings), "train.device", placement.device)
    experiment = finalists.experiment_of(folder, record)
    if (experiment / "tuner.pkl").exists():
        tuner = finalists.restore(experiment, chosen, demos, base, placement)
        restore_loggers(tuner)
    else:
        tuner = finalists.make_tuner(
            experiment,
            chosen,
            seeds,
            demos,
            base,
            placement,
            settings.max_failures,
            [*loggers(), *tracking(settings.track, folder)],
        )
    return tuner.fit()
