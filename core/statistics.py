"""Figures over training seeds: a mean and its confidence interval; a paired comparison of
two configurations on the same seeds and test episodes (rliable's methods: a stratified
bootstrap, the probability of improvement, the interquartile mean); how well an early figure
ranks trials as the final one does (Kendall's tau)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Comparison:
    """A challenger against a baseline on the same training seeds and the same test episodes:
    the mean paired difference of a figure, its 95% interval from a stratified bootstrap,
    the probability that a seed of the challenger beats a seed of the baseline, and each
    side's interquartile mean over seeds."""

    difference: float
    low: float
    high: float
    improvement: float  # P(challenger's seed > baseline's seed), ties count half
    iqm: tuple[float, float]  # (challenger, baseline)
    seeds: int

    @property
    def shown(self) -> str:
        """The difference and its interval, as reports print them: +0.070 [+0.010, +0.130]."""
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    @property
    def verdict(self) -> str:
        """better / worse when the interval leaves out 0, else undecided."""
        return "better" if self.low > 0 else "worse" if self.high < 0 else "undecided"


def paired_comparison(
    challenger: dict[int, list[float]],
    baseline: dict[int, list[float]],
    draws: int = 4000,
    seed: int = 0,
) -> Comparison:
    """Training seed -> per-episode figures (the same test episodes, in the same order, for
    both) -> the comparison over the seeds both have. The bootstrap resamples seeds, then
    episodes within each seed (rliable's stratified bootstrap), so the interval holds both
    the spread between trainings and the luck of the episodes."""
    seeds = sorted(set(challenger) & set(baseline))
    if not seeds:
        raise ValueError("no training seed is common to both sides")
    diffs = np.stack([np.subtract(challenger[s], baseline[s], dtype=float) for s in seeds])
    n_seeds, n_episodes = diffs.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(n_seeds, size=(draws, n_seeds))  # (D, S) seeds drawn
    cols = rng.integers(n_episodes, size=(draws, n_seeds, n_episodes))  # (D, S, E)
    resampled = diffs[rows[..., None], cols].mean(axis=(1, 2))  # (D,)
    low, high = np.percentile(resampled, [2.5, 97.5])
    ours = np.array([np.mean(challenger[s]) for s in challenger])
    theirs = np.array([np.mean(baseline[s]) for s in baseline])
    wins = (ours[:, None] > theirs[None]) + 0.5 * (ours[:, None] == theirs[None])
    return Comparison(
        difference=float(diffs.mean()),
        low=float(low),
        high=float(high),
        improvement=float(wins.mean()),
        iqm=(iqm(ours), iqm(theirs)),
        seeds=n_seeds,
    )


def iqm(values) -> float:
    """The interquartile mean: the mean of the middle half (rliable's robust aggregate)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def rank_agreement(early: list[float], final: list[float], draws: int = 2000, seed: int = 0):
    """Kendall's tau between two figures of the same trials (e.g. at a rung and at the end)
    and its 95% bootstrap interval over trials: whether the early figure orders trials as the
    final one does. (nan, nan, nan) with fewer than 3 trials."""
    early, final = np.asarray(early, dtype=float), np.asarray(final, dtype=float)
    if len(early) < 3:
        return math.nan, math.nan, math.nan
    tau = stats.kendalltau(early, final).statistic
    picks = np.random.default_rng(seed).integers(len(early), size=(draws, len(early)))
    chunks = max(1, draws * len(early) ** 2 // 4_000_000)  # draws x n x n signs a chunk
    taus = np.concatenate(
        [kendall_tau_b(early[p], final[p]) for p in np.array_split(picks, chunks)]
    )
    taus = taus[np.isfinite(taus)]  # a draw with one value on a side has no order
    low, high = np.percentile(taus, [2.5, 97.5]) if len(taus) else (math.nan, math.nan)
    return float(tau), float(low), float(high)


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row of ``x`` with the same row of ``y`` (nan where a row has
    one value): concordant minus discordant pairs over the square root of the pairs untied
    on each side, which counts ties as scipy.stats.kendalltau does."""
    dx = np.sign(x[:, :, None] - x[:, None, :])
    dy = np.sign(y[:, :, None] - y[:, None, :])
    untied = (dx != 0).sum(axis=(1, 2)) * (dy != 0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=(1, 2)) / np.sqrt(untied)
