"""The metrics a training iteration reports: their names, which way is better, the time unit,
and how ties between equal scores are broken (``core/statistics.py`` summarises figures over
seeds).

Rollouts happen on three disjoint sets of episodes (``data/envs.py``): *training*
(demonstrations, DAgger), *selection* (``eval/*``: what ASHA judges and the search ranks) and
*test* (``test/*``: final figures only, after the last iteration, never used to choose).
``val/*`` are the masked-token loss and accuracy on held-out demonstrations; ``train/*`` the
optimiser's side; ``perf/*`` speed.
"""

from __future__ import annotations

import math
from typing import Literal

# Tune's time attribute: one iteration is ``train.steps_per_iter`` optimiser steps.
TIME = "iteration"

# Every metric a search can optimise, and its direction: losses and the length ratio (episode
# length / the expert's) are minimised; returns, success and accuracy maximised.
MODES = {
    "eval/return": "max",
    "eval/success": "max",
    "eval/len_ratio": "min",
    "val/loss": "min",
    "val/acc": "max",
    "train/loss": "min",
}
Metric = Literal[tuple(MODES)]  # type: ignore[valid-type]

# The test report also says how many of its episodes start from a layout (grid + agent) that no
# training episode had, success on those alone, and how many distinct layouts it saw.
TEST = ("test/success", "test/return", "test/len_ratio")
# Shown first: Ray's live trial table shows the first few metrics of a result.
HEADLINE = ("eval/return", "eval/success", "val/loss", "perf/samples_per_s")
# One line per iteration of `train`.
PROGRESS = (
    "train/loss",
    "val/loss",
    "val/acc",
    "eval/success",
    "eval/return",
    "perf/samples_per_s",
)
# Columns of a search's exports.
EXPORTED = ("eval/return", "eval/success", "eval/len_ratio", "val/loss", "val/acc")

# Rollout scores tie: early on most returns are exactly 0, later every policy that solves all
# episodes scores the same. Validation loss breaks such ties, shifted in small enough that no
# real difference of a mean over episodes moves (returns of 100 episodes differ by at least
# about 1e-5; the shift is 1e-6 x a loss of order 1).
TIEBREAK, TIEBREAK_SCALE = "val/loss", 1e-6


def mode_of(metric: str) -> str:
    return MODES[metric]


def judged(metric: str, value: float, loss: float | None) -> float:
    """``value`` of ``metric`` shifted by the tie-break: a lower validation loss is better,
    whichever way the metric points."""
    if metric == TIEBREAK or loss is None or not math.isfinite(loss):
        return value
    better = 1.0 if mode_of(metric) == "max" else -1.0
    return value - better * TIEBREAK_SCALE * loss
