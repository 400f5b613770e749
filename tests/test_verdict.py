"""The verdict with power: the winner against the incumbent, paired on the same seeds and test
episodes (a stratified bootstrap, the probability of improvement, the IQM); and whether ASHA's
early figures order trials as the final ones do (Kendall's tau), on hand-made searches."""

import numpy as np
import pytest
import yaml
from handmade import finalist_runs, trial, write_experiment, write_search
from scipy import stats

from core.statistics import iqm, paired_comparison, rank_agreement
from search.export import export
from search.record import Chosen

SEEDS = [1, 2, 3]


def episodes(rate: float, seed: int, n: int = 300) -> list[float]:
    """Each test episode's return: a success (0.9) with probability ``rate``, else 0."""
    rng = np.random.default_rng(seed)
    return list(np.where(rng.random(n) < rate, 0.9, 0.0))


def test_a_known_better_is_better_and_a_known_equal_is_undecided():
    base = {s: episodes(0.6, s) for s in SEEDS}
    better = {s: episodes(0.8, 100 + s) for s in SEEDS}
    c = paired_comparison(better, base)
    assert c.verdict == "better" and 0 < c.low < c.difference < c.high
    assert c.difference == pytest.approx(0.9 * 0.2, abs=0.05)
    assert c.improvement == 1.0 and c.iqm[0] > c.iqm[1] and c.seeds == 3
    same = paired_comparison(base, {s: list(v) for s, v in base.items()})
    assert same.verdict == "undecided" and same.low == same.high == 0
    noisy = paired_comparison({s: episodes(0.6, 200 + s) for s in SEEDS}, base)
    assert noisy.verdict == "undecided" and noisy.low < 0 < noisy.high
    assert paired_comparison(base, better).verdict == "worse"


def test_pairing_sees_what_two_unpaired_intervals_miss():
    """Two policies that differ by a little on every seed, while the seeds differ a lot from
    each other: unpaired 95% intervals over 3 seeds overlap; the paired difference does not."""
    hard = {1: 0.3, 2: 0.6, 3: 0.9}  # how good a training seed happens to be
    base = {s: episodes(hard[s], s) for s in SEEDS}
    better = {s: [min(0.9, r + 0.9 * (i % 10 == 0)) for i, r in enumerate(base[s])] for s in SEEDS}
    c = paired_comparison(better, base)
    assert c.verdict == "better"
    from core.statistics import mean_interval

    (w, w_half), (i, i_half) = (
        mean_interval([np.mean(v[s]) for s in SEEDS]) for v in (better, base)
    )
    assert w - w_half < i + i_half, "the unpaired intervals overlap"


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(3.5)


def test_kendalls_tau_says_whether_early_figures_order_trials_as_final_ones():
    tau, low, high = rank_agreement([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert tau == pytest.approx(1.0) and high == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    assert all(np.isnan(rank_agreement([1, 2], [1, 2])))


@pytest.fixture
def searched(tmp_path):
    folder = tmp_path / "s"
    chosen = Chosen({"incumbent": {}, "trial_00000002": {"train.lr": 0.0011}}, SEEDS)
    trials = [
        trial(1, [0.1, 0.3, 0.5]),
        trial(2, [0.2, 0.4, 0.6]),
        trial(3, [0.0]),
        trial(4, [0.3]),
    ]
    write_search(folder, trials, stage="done", chosen=chosen)
    per_episode = {
        "incumbent": {s: episodes(0.5, s) for s in SEEDS},
        "trial_00000002": {s: episodes(0.8, 10 + s) for s in SEEDS},
    }
    returns = {"incumbent": 0.45, "trial_00000002": 0.72}
    runs = finalist_runs(chosen.configs, SEEDS, returns, per_episode)
    write_experiment(folder / "finalists", runs)
    return folder


@pytest.mark.slow  # over a second: the fast tier stays under 30 s
def test_the_summary_and_best_config_carry_the_paired_verdict(searched):
    outcome = export(searched)
    assert outcome.finished and outcome.retrained[0].name == "trial_00000002"
    summary = (searched / "summary.md").read_text()
    assert "Verdict: better. trial_00000002 against the incumbent, paired on 3 seeds" in summary
    result = yaml.safe_load((searched / "best_config.yaml").read_text())["result"]
    paired = result["against the incumbent (paired test/return)"]
    assert paired["verdict"] == "better" and paired["ci95"][0] > 0 and paired["seeds"] == 3
    assert "## Is pruning sound here?" in summary
    assert "| eval/return at iteration 1 | eval/return at the end | 2 |" in summary


def test_the_interval_of_kendalls_tau_is_scipys_over_the_same_draws():
    rng = np.random.default_rng(3)
    early, final = rng.integers(0, 4, 9).astype(float), rng.normal(size=9)
    picks = np.random.default_rng(0).integers(9, size=(500, 9))
    taus = [
        stats.kendalltau(early[p], final[p]).statistic
        for p in picks
        if len(set(early[p])) > 1 and len(set(final[p])) > 1
    ]
    tau, low, high = rank_agreement(list(early), list(final), draws=500, seed=0)
    assert tau == pytest.approx(stats.kendalltau(early, final).statistic)
    assert (low, high) == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])))
