"""Search spaces: every sample, from either sampler, is a configuration that trains."""

import math

import optuna
import pytest

from core.config import DEFAULT, PRESETS, from_flat
from data.errors import BadInput
from search.spaces import GRID, SPACES, point_of, space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def samples(name: str, sampler, n: int) -> list[tuple[dict, dict]]:
    """(suggested, real values) of ``n`` samples; the study is told a value so TPE models."""
    study = optuna.create_study(sampler=sampler, direction="maximize")
    out = []
    for i in range(n):
        trial = study.ask()
        real = space(name)(trial)
        out.append(({**trial.params, **real}, real))
        study.tell(trial, float(i % 7))
    return out


@pytest.mark.parametrize("name", ["default", "wide", "extended"])
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_every_sample_is_a_valid_configuration(name, sampler):
    make = {
        "random": lambda: optuna.samplers.RandomSampler(seed=1),
        "tpe": lambda: optuna.samplers.TPESampler(seed=1, multivariate=True, n_startup_trials=10),
    }[sampler]
    seen_hidden, seen_heads = set(), set()
    for params, real in samples(name, make(), 80):
        config = from_flat(params, DEFAULT)  # validates: raises on a bad config
        m, d, t = config.model, config.diffusion, config.train
        assert m.hidden % m.heads == 0 and m.hidden in (32, 64, 128)
        assert m.hidden // m.heads in (8, 16, 32)
        assert 1 <= m.depth <= 4
        assert 3e-4 <= t.lr <= 1e-2
        assert d.schedule in ("cosine", "linear", "loglinear")
        assert d.exec_steps <= m.horizon and d.sampling_steps <= m.horizon
        assert real["model.hidden"] == m.hidden and real["model.heads"] == m.heads
        seen_hidden.add(m.hidden)
        seen_heads.add(m.heads)
    assert seen_hidden == {32, 64, 128}, "every hidden size is reachable"
    assert len(seen_heads) >= 4


def test_learning_rate_is_sampled_on_a_log_scale():
    lrs = [p["train.lr"] for p, _ in samples("default", optuna.samplers.RandomSampler(0), 400)]
    low = sum(lr < math.sqrt(3e-4 * 1e-2) for lr in lrs) / len(lrs)
    assert 0.4 < low < 0.6, "half the samples below the geometric mean of the range"


def test_wide_space_adds_the_documented_parameters():
    params, _ = samples("wide", optuna.samplers.RandomSampler(0), 1)[0]
    for key in (
        "train.batch_size",
        "model.dropout",
        "train.weight_decay",
        "model.conditioning",
        "diffusion.weighting",
        "model.horizon",
        "diffusion.exec_steps",
        "diffusion.sampling_steps",
        "train.ema",
    ):
        assert key in params


def test_extended_space_reaches_memory_the_explorer_and_film():
    """What the hand-made `memory` preset and `model.film` add are points of it."""
    drawn = samples("extended", optuna.samplers.RandomSampler(0), 60)
    assert {params["model.history"] for params, _ in drawn} == {0, 4, 8}
    assert {params["model.map"] for params, _ in drawn} == {0, 15}
    assert {params["data.expert"] for params, _ in drawn} == {"auto", "explorer"}
    assert {params["model.film"] for params, _ in drawn} == {False, True}


def test_unknown_space_is_bad_input():
    with pytest.raises(BadInput, match="unknown space"):
        space("huge")


def test_the_grid_space_samples_only_its_points():
    points = set()
    for params, real in samples("grid", optuna.samplers.RandomSampler(seed=2), 400):
        assert real == {} and set(params) == set(GRID)
        assert all(params[k] in values for k, values in GRID.items())
        from_flat(params, DEFAULT)  # every point is a valid configuration
        points.add(tuple(params[k] for k in GRID))
    assert len(points) == math.prod(len(values) for values in GRID.values()) == 48


@pytest.mark.parametrize("preset", ["default", "memory"])
@pytest.mark.parametrize("name", list(SPACES))
def test_the_preset_is_a_point_of_every_space_and_round_trips(name, preset):
    """A search from `default` or `memory` (`--preset`) starts from the preset's own values."""
    base = PRESETS[preset]
    point = point_of(name, base)
    assert point is not None, f"the {preset} preset lies outside {name}"
    fixed = optuna.trial.FixedTrial(point)
    real = SPACES[name](fixed)
    assert from_flat({**fixed.params, **real}, base) == base


def test_a_preset_outside_the_space_has_no_point():
    assert point_of("default", PRESETS["bc"]) is None, "schedule full is not searched"
    assert point_of("wide", PRESETS["seed"]) is None, "a 49-token horizon is no power of two"


def test_the_control_space_keeps_the_presets_network():
    for params, real in samples("control", optuna.samplers.RandomSampler(seed=3), 100):
        config = from_flat({**params, **real}, DEFAULT)  # valid
        assert config.model.hidden == 64 and config.model.depth == 3 and config.model.heads == 4
        assert config.diffusion.exec_steps <= config.model.horizon
