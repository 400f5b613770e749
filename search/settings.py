"""A search's settings, declared once: each field's type, default, range and doc give the
search's command-line flags (``run_search.py search --help``), their checks and what a
resumed or exported search reads back from its record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from core import config as cfg
from core import fields
from core.config import Preset
from core.fields import AT_LEAST_ONE, NON_NEGATIVE, Range, setting
from core.metrics import Metric, mode_of
from core.tracking import Track, require
from data.errors import BadInput

# The search spaces (search/spaces.py defines each; named here so that the settings, and the
# command line's --help, load without Optuna).
SpaceName = Literal["default", "wide", "extended", "control", "grid"]
SearcherName = Literal["tpe", "random"]  # search/searcher.py
SchedulerName = Literal["asha", "fifo"]  # search/scheduler.py

# --smoke: a real search on a budget that finishes in about a minute (tests and CI).
SMOKE_SETTINGS = {
    "env": "MiniGrid-DoorKey-5x5-v0",
    "num_samples": 6,
    "max_iters": 4,
    "grace_period": 1,
    "reduction_factor": 2.0,
    "finalists": 2,
    "finalist_seeds": 2,
    "test_episodes": 20,
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
    """A search's settings. The defaults are the main job: a search that shows what it is for
    on 2 CPU cores in a few minutes, finalists included, on an environment where the preset
    falls short at its own full recipe and most test layouts are new, so the search has
    something to find (README, "Quick start", gives its time and output)."""

    env: str = setting(
        "MiniGrid-Dynamic-Obstacles-8x8-v0", "environment the trials train on (`envs` lists them)"
    )
    num_samples: int = setting(12, "trials to run", AT_LEAST_ONE)
    max_iters: int = setting(4, "iterations of a full trial", AT_LEAST_ONE)
    space: SpaceName = setting("default", "hyperparameters searched (search/spaces.py)")
    searcher: SearcherName = setting("tpe", "proposes configurations")
    scheduler: SchedulerName = setting("asha", "stops weak trials early (asha) or never (fifo)")
    grace_period: int = setting(2, "ASHA's first rung, in iterations", AT_LEAST_ONE)
    reduction_factor: float = setting(
        2.0, "ASHA keeps 1/this of the trials at each rung", Range(1, open_low=True)
    )
    metric: Metric = setting("eval/return", "metric to optimise, on the selection episodes")
    preset: Preset = setting("default", "configuration the space is laid over")
    seed: int = setting(0, "searcher and training seed", NON_NEGATIVE)
    max_failures: int = setting(2, "retries of a failed trial", NON_NEGATIVE)
    time_budget: float = setting(
        0.0,
        "seconds of wall time the trials may take, over every run of the search (a resume "
        "included); then the trials stop and the finalists run on what they found. 0: none",
        NON_NEGATIVE,
    )
    finalists: int = setting(
        3,
        "top configurations retrained at the end beside the incumbent (the preset); 0: none",
        NON_NEGATIVE,
    )
    finalist_seeds: int = setting(3, "fresh training seeds per finalist", AT_LEAST_ONE)
    race_seeds: int = setting(
        0,
        "race: while the winner's paired verdict against the incumbent is undecided, add one "
        "seed at a time to both (and to finalists within the winner's interval) up to this "
        "many seeds each; 0: no race",
        NON_NEGATIVE,
    )
    test_episodes: int = setting(300, "test episodes each finalist seed is judged on", AT_LEAST_ONE)
    storage: str = setting(
        "",
        "Optuna storage URL for the study (sqlite:///study.db, postgresql://...); empty: "
        "the journal file optuna.journal in the search folder",
    )
    study_name: str = setting("", "the Optuna study's name; empty: the search's --name")
    warm_start: str = setting(
        "", "a finished search folder whose best configurations are proposed first"
    )
    track: Track = setting(
        "none",
        "log every trial to Weights & Biases or MLflow through Ray's logger callbacks "
        "(pip install -e '.[track]'; MLFLOW_TRACKING_URI, WANDB_MODE=offline)",
    )
    smoke: bool = setting(False, "tiny budget, about a minute (tests and CI)")

    def __post_init__(self):
        """Each setting within its declaration from the start (search/api.py builds these
        by hand): a wrong value is one line, not a failure deep in the search."""
        fields.check(self, flag=True)

    @property
    def mode(self) -> str:
        return mode_of(self.metric)

    @classmethod
    def given(cls, flags: dict) -> Settings:
        """Settings from what the user gave (flags left out are absent): the defaults, then
        the smoke budget when asked for, then the flags."""
        rungs = [f for f in ("grace_period", "reduction_factor") if f in flags]
        if flags.get("scheduler") == "fifo" and rungs:
            named = " and ".join("--" + f.replace("_", "-") for f in rungs)
            raise BadInput(
                f"{named} set ASHA's rungs, and --scheduler fifo has none: drop "
                f"{'them' if len(rungs) > 1 else 'it'} or use --scheduler asha"
            )
        smoke = SMOKE_SETTINGS if flags.get("smoke") else {}
        return cls(**{**smoke, **flags})

    @classmethod
    def from_record(cls, raw: object, folder) -> Settings:
        """The settings a search folder recorded; BadInput when they do not fit this version."""
        if isinstance(raw, dict) and "finalists" not in raw:
            raw = {**raw, "finalists": 0}  # written before searches had finalists
        try:
            return check(cls(**raw))
        except (TypeError, BadInput):
            raise BadInput(
                f"{folder} was written by another version of this tool; start a new search"
            ) from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check(settings: Settings) -> Settings:
    """Each setting within its declared values, and the rules between them."""
    from data.envs import check_env_id  # gymnasium's registry: not needed for --help

    fields.check(settings, flag=True)
    check_env_id(settings.env)
    require(settings.track)
    if settings.scheduler == "asha" and settings.grace_period > settings.max_iters:
        raise BadInput(
            f"--grace-period {settings.grace_period} is more than --max-iters "
            f"{settings.max_iters}: a trial must be able to reach the first rung"
        )
    return settings


def base_config(settings: Settings) -> cfg.Config:
    """The configuration every trial starts from: the preset, the environment, the budget;
    evaluated at every iteration, because the scheduler judges trials on rollouts."""
    values = {
        "data.env": settings.env,
        "train.iters": settings.max_iters,
        "train.eval_every": 1,
        "train.eval_episodes": 100,
        "train.test_episodes": 0,  # trials are judged on selection episodes only
        "train.seed": settings.seed,
    }
    if settings.smoke:
        values.update(SMOKE)
    return cfg.from_flat(values, cfg.preset(settings.preset), where="search settings")
