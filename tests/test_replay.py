"""The replay bench (bench/replay.py): a search replayed over recorded learning curves spends
what the real search would, counted in the order it spent it, the same every time."""

import itertools
import math

import pytest

from bench.replay import incumbent_return, key, outcomes, replay, sequence
from search.spaces import GRID

PRESET = {"train.lr": 2e-3, "model.hidden": 64, "model.depth": 3, "diffusion.exec_steps": 2}
MAX_ITERS = 4


def table() -> dict:
    """A table of made-up curves: a point's return climbs to its quality, which only one
    executed step a plan reaches in full (as on Dynamic-Obstacles); validation loss falls with
    it, so ties at -1 after the first iteration are told apart."""
    points = []
    for values in itertools.product(*GRID.values()):
        point = dict(zip(GRID, values, strict=True))
        quality = (1.0 if point["diffusion.exec_steps"] == 1 else 0.3) * point["train.lr"] / 8e-3
        curve = [
            {
                "iteration": i,
                "eval/return": -1.0 if i == 1 else round(quality * i / MAX_ITERS, 4),
                "val/loss": 1.0 - quality * i / (2 * MAX_ITERS),
            }
            for i in range(1, MAX_ITERS + 1)
        ]
        points.append({"values": point, "curve": curve, "test": {"test/return": quality}})
    return {"env": "made-up", "max_iters": MAX_ITERS, "incumbent": key(PRESET), "points": points}


@pytest.mark.slow
def test_fifo_spends_every_iteration_and_reaches_a_target_in_trial_order(local_ray, tmp_path):
    curves = table()
    folder = replay(curves, "fifo_random", 0, 5, 2, 2.0, tmp_path)
    trials = sequence(folder, curves)
    assert trials[0][0] == key(PRESET), "the preset is the first trial"
    assert [iterations for _, iterations, _ in trials] == [MAX_ITERS] * 5
    anything, nothing, incumbent = outcomes(
        curves, folder, [-math.inf, math.inf, incumbent_return(curves)]
    )
    assert anything["trial_iterations_spent"] == 5 * MAX_ITERS
    # The preset does not count: the second trial, after the preset's iterations and its own.
    assert anything["reached"] and anything["trial_iterations_to_target"] == 2 * MAX_ITERS
    assert not nothing["reached"] and nothing["trial_iterations_to_target"] == 5 * MAX_ITERS
    assert incumbent["target"] == pytest.approx(0.075)


@pytest.mark.slow
def test_asha_replays_are_the_same_every_time_and_count_only_what_ran(local_ray, tmp_path):
    curves = table()
    first = replay(curves, "asha_tpe", 3, 8, 2, 2.0, tmp_path / "a")
    again = replay(curves, "asha_tpe", 3, 8, 2, 2.0, tmp_path / "b")
    trials = sequence(first, curves)
    assert trials == sequence(again, curves)
    ran = [iterations for _, iterations, _ in trials]
    assert set(ran) <= {2, MAX_ITERS} and 2 in ran, "ASHA stops some trials at its rung"
    (found,) = outcomes(curves, first, [-math.inf])
    assert found["trial_iterations_spent"] == sum(ran)
    # Trials run one at a time: the target is reached when the first trial of another
    # configuration than the preset's (TPE may propose it again) that ran its full budget ends.
    full = next(
        i
        for i, (point, iterations, _) in enumerate(trials)
        if point != key(PRESET) and iterations == MAX_ITERS
    )
    assert found["trial_iterations_to_target"] == sum(ran[: full + 1])
