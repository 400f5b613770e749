"""The search: assemble Ray Tune's Tuner (trainable, searcher, scheduler, resources) and run
it, or restore an interrupted one, then export what it found.

A search lives in ``RESULTS_DIR/NAME``: Ray Tune's own experiment folder (``Tuner.restore``
and ``ExperimentAnalysis`` open it), plus ``search.yaml`` (the settings and the wall time
spent, which a resume reuses), ``asha_state.yaml`` (ASHA's rungs) and the exports.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from core import config as cfg
from core.runs import load_demos
from core.trainable import train_trial
from data.errors import BadInput
from search import cluster
from search.export import export
from search.results import METRICS, experiment_state, mode_of, read_record, write_record
from search.scheduler import check_scheduler, forget_unknown_trials, make_scheduler
from search.searcher import PruningAwareOptunaSearch, make_sampler
from search.spaces import space

# Keeping two checkpoints a trial makes Ray snapshot the experiment at least every second
# checkpoint (so a resume loses little); Ray warns about that rate, which is intended here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# --smoke: a real search on a budget that finishes in about a minute (tests and CI).
SMOKE_SETTINGS = {
    "env": "MiniGrid-DoorKey-5x5-v0",
    "num_samples": 6,
    "max_iters": 4,
    "grace_period": 1,
    "reduction_factor": 2.0,
}
SMOKE = {
    "data.episodes": 60,
    "train.steps_per_iter": 10,
    "train.batch_size": 32,
    "train.warmup_steps": 5,
    "train.eval_episodes": 10,
    "train.dagger_episodes": 10,
}


@dataclass(frozen=True)
class Settings:
    """The defaults are the main job: about 10 minutes on 2 CPU cores. DoorKey-5x5 has random
    layouts and separates configurations within a few hundred updates (DoorKey-8x8 needs
    about five iterations before any policy succeeds, so early rungs would compare zeros)."""

    env: str = "MiniGrid-DoorKey-5x5-v0"
    num_samples: int = 12
    max_iters: int = 6
    space: str = "default"
    searcher: str = "tpe"
    scheduler: str = "asha"
    grace_period: int = 3
    reduction_factor: float = 3.0
    metric: str = "eval/return"
    preset: str = "default"
    seed: int = 0
    smoke: bool = False
    max_failures: int = 2

    @property
    def mode(self) -> str:
        return mode_of(self.metric)


def settings_from(flags: dict) -> Settings:
    """Settings from the command line's flags (None: not given): the defaults, then the smoke
    budget when asked for, then what the user gave."""
    given = {k: v for k, v in flags.items() if v is not None}
    smoke = SMOKE_SETTINGS if given.get("smoke") else {}
    return Settings(**{**smoke, **given})


def base_config(settings: Settings) -> cfg.Config:
    """The configuration every trial starts from: the preset, the environment, the budget;
    evaluated at every iteration, because the scheduler judges trials on rollouts."""
    config = cfg.preset(settings.preset)
    sets = {
        "data.env": settings.env,
        "train.iters": settings.max_iters,
        "train.eval_every": 1,
        "train.eval_episodes": 100,
        "train.seed": settings.seed,
    }
    if settings.smoke:
        sets.update(SMOKE)
    for key, value in sets.items():
        config = cfg.override(config, key, value, "search settings")
    return cfg.validate(config)


def check(settings: Settings) -> None:
    if settings.metric not in METRICS:
        raise BadInput(f"unknown --metric {settings.metric!r}: use one of {', '.join(METRICS)}")
    if settings.num_samples < 1:
        raise BadInput(f"--num-samples {settings.num_samples} must be 1 or more")
    space(settings.space)
    make_sampler(settings.searcher, settings.seed, settings.num_samples)
    check_scheduler(
        settings.scheduler, settings.max_iters, settings.grace_period, settings.reduction_factor
    )


def search_folder(results_dir: Path, name: str) -> Path:
    """``results_dir/name``, refusing names that would leave the results folder."""
    if not NAME.match(name):  # a first letter or digit rules out "." and ".."
        raise BadInput(
            f"--name {name!r} must be one folder name (letters, digits, '.', '_', '-'), not a path"
        )
    return results_dir / name


def check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise BadInput(
            f"cannot write to --results-dir {results_dir} ({error.strerror}); "
            "pick a folder you can write"
        ) from None


def make_tuner(settings: Settings, folder: Path, placement: cluster.Placement, demos,
               base: cfg.Config) -> tune.Tuner:  # fmt: skip
    trainable = trainable_for(base, demos, placement)
    searcher = PruningAwareOptunaSearch(
        space(settings.space),
        make_sampler(settings.searcher, settings.seed, settings.num_samples),
        settings.metric,
        settings.mode,
        settings.max_iters,
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
            num_samples=settings.num_samples,
            # A reused actor skips process start-up and imports: on short trials this is
            # most of the per-trial overhead (DESIGN.md: 28% vs 81% busy CPUs).
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=folder.name,
            storage_path=str(folder.parent.resolve()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=1,  # the live trial table, without every trial's config and result box
        ),
    )


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
        tune.with_parameters(train_trial, demos=demos, base=cfg.to_dict(base)),
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
) -> dict:
    """Run (or resume) a search and export it; returns what ``export`` returns, with
    ``finished`` telling whether every trial ran to its end."""
    folder = search_folder(results_dir, name)
    if resume:
        if not (folder / "tuner.pkl").exists():
            raise BadInput(
                f"there is no search {name!r} in {results_dir} to resume; start it without --resume"
            )
        record = read_record(folder)
        try:
            settings = Settings(**record["settings"])
        except TypeError:
            raise BadInput(
                f"{folder} was written by another version of this tool; start a new search"
            ) from None
    else:
        if folder.exists():
            raise BadInput(
                f"{folder} already exists: pass --resume to continue that search, "
                "or choose another --name"
            )
        check(settings)
        check_writable(results_dir)
        record = {"settings": dataclasses.asdict(settings), "wall_s": 0.0}
    base = base_config(settings)
    mps = address is None and cluster.mps_available()
    if address is None:
        cluster.plan(cluster.local_resources(), cpus_per_trial, gpus_per_trial, max_concurrent, mps)
    url = cluster.start(address, dashboard_host)
    try:
        if address:
            cluster.check_shared(results_dir)
        demos = load_demos(base)
        placement = cluster.plan(
            ray.cluster_resources(),
            cpus_per_trial,
            gpus_per_trial,
            max_concurrent,
            mps,
        )
        base = placed(base, placement)
        announce(settings, folder, placement, url)
        if resume:
            forget_unknown_trials(folder, set(experiment_state(folder)))
            tuner = tune.Tuner.restore(
                str(folder.resolve()),
                trainable=trainable_for(base, demos, placement),
                resume_unfinished=True,
                resume_errored=True,
            )
        else:
            tuner = make_tuner(settings, folder, placement, demos, base)
        folder.mkdir(parents=True, exist_ok=True)
        record.update(
            base=cfg.to_dict(base),
            placement=dataclasses.asdict(placement),
            cpus=ray.cluster_resources().get("CPU", 0.0),
        )
        with WallClock(folder, record):
            tuner.fit()
    finally:
        cluster.stop()
    return export(folder)


class WallClock:
    """Adds the wall time of this run to the search's record every few seconds, so a search
    killed outright still knows how long it ran (utilisation needs it)."""

    def __init__(self, folder: Path, record: dict, every_s: float = 5.0):
        self.folder, self.record, self.every_s = folder, record, every_s
        self.before = float(record.get("wall_s", 0.0))
        self.stopped = threading.Event()

    def tick(self) -> None:
        self.record["wall_s"] = self.before + time.monotonic() - self.start
        write_record(self.folder, self.record)

    def loop(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.tick()

    def __enter__(self) -> WallClock:
        self.start = time.monotonic()
        self.tick()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self.tick()


def announce(settings: Settings, folder: Path, placement: cluster.Placement, url: str) -> None:
    print(
        f"search {folder.name}: {settings.num_samples} trials of {settings.space} space on "
        f"{settings.env}, {settings.searcher} + {settings.scheduler}, up to "
        f"{settings.max_iters} iterations each, optimising {settings.metric} ({settings.mode})"
    )
    print(f"placement: {placement.describe()}")
    if url:
        token = " (it asks for a token: paste the output of `ray get-auth-token`)"
        print(f"Ray dashboard: {url}{token if cluster.token_auth() else ''}")
    print(f"TensorBoard:   tensorboard --logdir {folder}")
    print(f"results:       {folder}")
