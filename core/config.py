"""Configuration: one frozen dataclass per concern, and the file format they share.

A YAML configuration, a checkpoint and a search's best-config export all hold the
same structure: ``{data: {...}, model: {...}, diffusion: {...}, train: {...}}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from data.demos import PLAN_LENGTH
from data.envs import check_env_id
from data.errors import BadInput


@dataclass(frozen=True)
class DataConfig:
    env: str = "MiniGrid-DoorKey-8x8-v0"  # MiniGrid id, one of the reach-the-goal families
    episodes: int = 500  # expert demonstrations generated (train + validation)
    seed: int = 0  # picks the demonstration and the held-out evaluation episodes (disjoint)
    val_fraction: float = 0.1  # share of episodes held out for validation loss
    noise: float = 0.0  # chance of a random executed action in a demonstration (DART); labels
    # stay the expert's shortest plan from each visited state, so the data shows recoveries


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 128  # transformer width D
    depth: int = 4  # DiT blocks
    heads: int = 4  # attention heads (must divide hidden)
    mlp_ratio: float = 4.0  # MLP width / hidden
    dropout: float = 0.1
    conditioning: str = "pool"  # pool: mean state token into adaLN; prefix: state tokens in context
    layout: str = "joint"  # prefix only: joint (all tokens attend to all, modulated by t) |
    # encoder (state tokens attend to each other only, unmodulated: encoded once per plan)
    horizon: int = 49  # action tokens predicted per plan (the chunk length H)


@dataclass(frozen=True)
class DiffusionConfig:
    schedule: str = "cosine"  # mask ratio over t: cosine | linear | loglinear | full (one-step BC)
    weighting: str = "none"  # none: plain masked CE (MaskGIT); elbo: MDLM's -alpha'/(1-alpha)
    antithetic: bool = False  # stratified t within a batch (lower loss variance)
    timesteps: int = 100  # t drawn from {1..T}/T; 0 means continuous time
    sampler: str = "confidence"  # confidence (MaskGIT order) | ancestral (MDLM)
    sampling_steps: int = 4  # K denoising steps per plan
    exec_steps: int = 4  # actions executed from each plan before replanning


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "plateau"  # plateau: ReduceLROnPlateau on val loss | cosine: warmup + cosine
    warmup_steps: int = 0  # linear warm-up (cosine schedule only)
    plateau_patience: int = 5  # iterations without val-loss progress before the lr is cut
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    ema: float = 0.0  # EMA decay of the weights used for evaluation; 0 disables
    iters: int = 20  # Tune-style iterations
    steps_per_iter: int = 100  # optimiser steps in one iteration (the search's time unit)
    dagger_every: int = 0  # every this many iterations, relabel the policy's own states; 0: off
    dagger_episodes: int = 100  # training-seed episodes the policy plays per relabelling
    eval_every: int = 5  # roll the policy out every this many iterations (and at the last)
    eval_episodes: int = 50  # held-out episodes per rollout evaluation
    seed: int = 0  # weights and batches (evaluation episodes follow data.seed)
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | mps


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTION_TYPES = {
    "data": DataConfig,
    "model": ModelConfig,
    "diffusion": DiffusionConfig,
    "train": TrainConfig,
}
CHOICES = {
    "model.conditioning": ("pool", "prefix"),
    "model.layout": ("joint", "encoder"),
    "diffusion.schedule": ("cosine", "linear", "loglinear", "full"),
    "diffusion.weighting": ("none", "elbo"),
    "diffusion.sampler": ("confidence", "ancestral"),
    "train.lr_schedule": ("plateau", "cosine"),
    "train.device": ("auto", "cpu", "cuda", "mps"),
}

# The seed configuration of DESIGN.md, exactly: 49 action tokens, cosine schedule, 100 diffusion
# steps (the training time grid). It names no sampling-step count; plans use the prototype's 4.
SEED = Config(data=DataConfig(env="MiniGrid-Empty-8x8-v0"))

# Chosen by measurement (docs/quality.md): a narrower, shallower model with in-context state
# tokens, short plans replanned often, a larger warmed-up learning rate and EMA weights learns
# far more per CPU-second than the seed; noisy demonstrations and DAgger relabelling show it
# the states its own mistakes lead to, where pure cloning loops.
DEFAULT = Config(
    data=DataConfig(episodes=2000, noise=0.3),
    model=ModelConfig(hidden=64, depth=3, heads=4, dropout=0.0, conditioning="prefix", horizon=8),
    diffusion=DiffusionConfig(schedule="linear", antithetic=True, sampling_steps=2, exec_steps=2),
    train=TrainConfig(
        batch_size=64,
        lr=2e-3,
        weight_decay=1e-4,
        lr_schedule="cosine",
        warmup_steps=100,
        ema=0.99,
        iters=30,
        steps_per_iter=100,
        dagger_every=2,
        dagger_episodes=200,
        eval_every=5,
    ),
)

# One-step behaviour cloning on the same tokens and backbone: a single action token, always
# masked, predicted in one step.
BC = dataclasses.replace(
    DEFAULT,
    model=dataclasses.replace(DEFAULT.model, horizon=1),
    diffusion=dataclasses.replace(
        DEFAULT.diffusion,
        schedule="full",
        weighting="none",
        antithetic=False,
        sampling_steps=1,
        exec_steps=1,
    ),
)

PRESETS = {"seed": SEED, "default": DEFAULT, "bc": BC}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise BadInput(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def from_dict(raw: object, base: Config = DEFAULT, where: str = "configuration") -> Config:
    """Build a Config from nested plain data; sections and keys left out keep ``base``'s values."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: expected a mapping of sections {list(SECTION_TYPES)}")
    unknown = set(raw) - set(SECTION_TYPES)
    if unknown:
        raise BadInput(
            f"{where}: unknown section {sorted(unknown)[0]!r}; sections are "
            f"{', '.join(SECTION_TYPES)}"
        )
    config = base
    for section, values in raw.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise BadInput(f"{where}: section {section!r} must be a mapping of keys to values")
        for key, value in values.items():
            config = override(config, f"{section}.{key}", value, where)
    return validate(config)


def override(config: Config, dotted: str, value: object, where: str = "--set") -> Config:
    """Return ``config`` with ``section.key`` set to ``value`` (a string is parsed as YAML)."""
    section, _, key = dotted.partition(".")
    if section not in SECTION_TYPES or not key:
        raise BadInput(
            f"{where}: unknown key {dotted!r}; keys look like section.name with a section in "
            f"{', '.join(SECTION_TYPES)} (e.g. model.hidden=64)"
        )
    part = getattr(config, section)
    fields = {f.name: f for f in dataclasses.fields(part)}
    if key not in fields:
        raise BadInput(f"{where}: unknown key {dotted!r}; {section} keys are {', '.join(fields)}")
    current = getattr(part, key)
    value = _coerce(value, type(current), dotted, where)
    return dataclasses.replace(config, **{section: dataclasses.replace(part, **{key: value})})


def apply_sets(config: Config, items: list[str]) -> Config:
    """``config`` with the command line's ``--set section.key=value`` items laid over it."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"--set {item!r} must look like key=value, e.g. model.hidden=64")
        config = override(config, key.strip(), value.strip())
    return config


def _coerce(value: object, kind: type, dotted: str, where: str) -> object:
    if isinstance(value, str) and kind is not str:
        with contextlib.suppress(yaml.YAMLError):  # not YAML: keep the string, fail below
            value = yaml.safe_load(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadInput(f"{where}: {dotted} must be {kind.__name__}, got {value!r}; fix the value")
    return value


def validate(config: Config) -> Config:
    """Reject configurations that cannot train; each message says what to change."""
    check_env_id(config.data.env)
    flat = {f"{s}.{k}": v for s, part in to_dict(config).items() for k, v in part.items()}
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise BadInput(f"{key} is {flat[key]!r}: use one of {', '.join(allowed)}")
    positive = [
        "data.episodes", "model.hidden", "model.depth", "model.heads", "model.horizon",
        "diffusion.sampling_steps", "diffusion.exec_steps", "train.batch_size", "train.lr",
        "train.iters", "train.steps_per_iter", "train.eval_every", "train.eval_episodes",
        "model.mlp_ratio",
    ]  # fmt: skip
    for key in positive:
        if not (flat[key] > 0 and math.isfinite(flat[key])):
            raise BadInput(f"{key} is {flat[key]!r}: it must be a positive number")
    non_negative = [
        "data.seed", "train.seed", "train.weight_decay", "train.warmup_steps",
        "train.grad_clip", "train.threads", "diffusion.timesteps", "train.plateau_patience",
        "train.dagger_every", "train.dagger_episodes",
    ]  # fmt: skip
    for key in non_negative:
        if not (flat[key] >= 0 and math.isfinite(flat[key])):
            raise BadInput(f"{key} is {flat[key]!r}: it must be zero or more")
    m, d = config.model, config.diffusion
    if m.hidden % m.heads:
        raise BadInput(
            f"model.heads={m.heads} does not divide model.hidden={m.hidden}: "
            "pick heads that divide hidden (e.g. 4 for 128)"
        )
    if m.layout == "encoder" and m.conditioning != "prefix":
        raise BadInput(
            "model.layout=encoder lays out the state tokens in context: it needs "
            "model.conditioning=prefix (or use model.layout=joint)"
        )
    if d.exec_steps > m.horizon:
        raise BadInput(
            f"diffusion.exec_steps={d.exec_steps} is more than model.horizon={m.horizon}: "
            "a plan cannot execute more actions than it predicts"
        )
    if d.sampling_steps > m.horizon:
        raise BadInput(
            f"diffusion.sampling_steps={d.sampling_steps} is more than model.horizon="
            f"{m.horizon}: each step unmasks at least one token, use at most {m.horizon}"
        )
    if d.schedule == "full" and d.weighting != "none":
        raise BadInput(
            "diffusion.schedule=full masks every token at every t, so it has no ELBO "
            "weights: set diffusion.weighting=none"
        )
    if m.horizon > PLAN_LENGTH:
        raise BadInput(
            f"model.horizon={m.horizon} is more than the {PLAN_LENGTH} expert actions a "
            f"demonstration stores per step: use at most {PLAN_LENGTH}"
        )
    if not 0.0 <= config.data.noise < 1.0:
        raise BadInput(f"data.noise is {config.data.noise}: use a probability in [0, 1)")
    if not 0.0 <= config.train.ema < 1.0:
        raise BadInput(f"train.ema is {config.train.ema}: use 0 (off) or a decay in (0, 1)")
    if not 0.0 < config.data.val_fraction < 1.0:
        raise BadInput(f"data.val_fraction is {config.data.val_fraction}: use a value in (0, 1)")
    if config.data.episodes < 2:
        raise BadInput("data.episodes must be at least 2 (one for training, one for validation)")
    if not 0.0 <= m.dropout < 1.0:
        raise BadInput(f"model.dropout is {m.dropout}: use a value in [0, 1)")
    return config


def load_yaml(path: Path, base: Config = DEFAULT) -> Config:
    """Read a configuration file (``train --config``); extra top-level keys such as a
    search's ``result`` are allowed and ignored."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise BadInput(f"cannot read config {path}: {error.strerror}; check the path") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"config {path} is not valid YAML{at}; fix the file") from None
    if not isinstance(raw, dict):
        raise BadInput(f"config {path} must be a YAML mapping with sections data, model, ...")
    sections = {k: v for k, v in raw.items() if k in SECTION_TYPES}
    if not sections:
        raise BadInput(
            f"config {path} has none of the sections {', '.join(SECTION_TYPES)}; "
            "write one (see `python run_search.py train --help`)"
        )
    return from_dict(sections, base, where=f"config {path}")


def dump_yaml(config: Config, extra: dict | None = None) -> str:
    return yaml.safe_dump({**to_dict(config), **(extra or {})}, sort_keys=False)
