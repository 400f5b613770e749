"""Figures over training seeds: a mean and its confidence interval."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean of per-seed figures and the half-width of its ``level`` confidence interval
    (Student's t over seeds: with 3 seeds the half-width is 2.5 standard deviations). NaN
    where fewer than two finite values leave no spread to estimate."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(finite) == 0:
        return math.nan, math.nan
    if len(finite) == 1:
        return float(finite[0]), math.nan
    t = stats.t.ppf(0.5 + level / 2, df=len(finite) - 1)
    return float(finite.mean()), float(t * finite.std(ddof=1) / math.sqrt(len(finite)))
