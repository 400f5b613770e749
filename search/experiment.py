"""One Ray Tune experiment of a search (its trials, an extension's trials, its finalists'
runs): the trainable placed on what a trial is given, and the Tuner that runs it, built new
or restored where an interrupted one lies. Both stages of a search go through here."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from ray import tune
from ray.tune import ResultGrid, Stopper

from core import config as cfg
from core.trainable import train_trial
from data.demos import DATA_CACHE
from search import upstream
from search.console import restore_loggers
from search.placement import Placement
from search.progress import ProgressLines

# Keeping two checkpoints a trial makes Ray snapshot the experiment at least every second
# checkpoint (so a resume loses little); Ray warns about that rate, which is intended here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# The trials' loggers are given explicitly (search/console.py loggers()).
os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"


def trainable_for(
    base: cfg.Config, demos, placement: Placement, finalists: dict | None = None
) -> tune.Trainable:
    """``core/trainable.py``'s trainable on ``placement``'s resources, trials starting from
    ``base`` on its device; the dataset goes through Ray's object store once."""
    base = cfg.override(base, "train.device", placement.device, "placement")
    parameters = {"demos": demos, "base": cfg.to_dict(base), "cache": str(DATA_CACHE.resolve())}
    if finalists is not None:
        parameters["finalists"] = finalists
    return tune.with_resources(
        tune.with_parameters(train_trial, **parameters),
        {"cpu": placement.cpus_per_trial, "gpu": placement.gpus_per_trial},
    )


def fit(
    experiment: Path,
    trainable,
    fresh: Callable[[], dict],
    max_failures: int,
    callbacks: list,
    progress: ProgressLines | None,
    stop: Stopper | None = None,
) -> ResultGrid:
    """Run the experiment in ``experiment``: restored where an interrupted one lies there (its
    trials go on from their checkpoints, errored ones too), else a new Tuner with the
    ``tune_config`` (and ``param_space``) that ``fresh()`` gives. ``progress`` prints a line a
    trial; without it, Ray prints its own tables and boxes."""
    if (experiment / "tuner.pkl").exists():
        tuner = tune.Tuner.restore(
            str(experiment.resolve()),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
        )
        restore_loggers(tuner)
        restored = upstream.restored_callbacks(tuner)  # the lines of the run it was saved by
        restored[:] = [c for c in restored if not isinstance(c, ProgressLines)]
        restored.extend([progress] if progress else [])
    else:
        run_config = tune.RunConfig(
            name=experiment.name,
            storage_path=str(experiment.parent.resolve()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0 if progress else 1,  # Ray's live trial table and boxes, or our lines
            callbacks=[*callbacks, *([progress] if progress else [])],
            stop=stop,
        )
        tuner = tune.Tuner(trainable, run_config=run_config, **fresh())
    if progress is None:
        return tuner.fit()
    # Ray's newer console output prints each experiment's configuration box even when told
    # to be silent; its earlier one prints nothing then.
    with environment("RAY_AIR_NEW_OUTPUT", "0"):
        return tuner.fit()


@contextlib.contextmanager
def environment(name: str, value: str):
    """``os.environ[name]`` set to ``value`` for the length of the block."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def run_name(trial) -> str:
    """A finalist's run: the finalist and its training seed."""
    return f"{trial.config['finalist']}_seed{trial.config['train.seed']}"
