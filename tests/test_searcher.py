"""The searcher against a real Optuna study: a trial ASHA stopped early is PRUNED, not a
finished trial with a low-budget value; a trial that ran its budget is COMPLETE."""

from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search import upstream
from search.searcher import PruningAwareOptunaSearch, make_sampler
from search.spaces import default

MAX_T = 6


def searcher(cls=PruningAwareOptunaSearch, seed: int = 0):
    sampler = make_sampler("tpe", seed, 12)
    if cls is OptunaSearch:
        return OptunaSearch(space=default, metric="eval/return", mode="max", sampler=sampler)
    return cls(default, sampler, "eval/return", "max", MAX_T)


def play(search, trial_id: str, values: list[float]) -> None:
    """Report ``values`` as iterations 1..n, as Ray does: every result but the last goes to
    on_trial_result; the last arrives with on_trial_complete."""
    search.suggest(trial_id)
    for i, v in enumerate(values[:-1], start=1):
        search.on_trial_result(
            trial_id, {"eval/return": v, "iteration": i, "training_iteration": i}
        )
    n = len(values)
    last = {"eval/return": values[-1], "iteration": n, "training_iteration": n}
    search.on_trial_complete(trial_id, last)


def states(search) -> list[tuple[TrialState, float | None, dict]]:
    return [(t.state, t.value, t.intermediate_values) for t in search.study.trials]


def test_stopped_early_is_pruned_and_full_budget_is_complete():
    search = searcher()
    play(search, "a", [0.1, 0.3])  # stopped by ASHA at iteration 2 of 6
    play(search, "b", [0.2, 0.4, 0.5, 0.6, 0.7, 0.9])  # ran the whole budget
    (a_state, _, a_steps), (b_state, b_value, _) = states(search)
    assert a_state == TrialState.PRUNED  # Optuna then keeps its last intermediate value
    assert a_steps == {1: 0.1, 2: 0.3}, "the last result is kept as an intermediate value"
    assert b_state == TrialState.COMPLETE and b_value == 0.9


def test_plain_ray_optuna_search_would_call_it_complete():
    """The behaviour this project corrects (Ray 2.60): if this starts failing, Ray fixed it
    and PruningAwareOptunaSearch may be retired."""
    search = OptunaSearch(
        space=default, metric="eval/return", mode="max", sampler=make_sampler("tpe", 0, 12)
    )
    play(search, "a", [0.1, 0.3])
    assert upstream.optuna_study(search).trials[0].state == TrialState.COMPLETE


def test_errored_trial_is_failed():
    search = searcher()
    search.suggest("a")
    search.on_trial_complete("a", None, error=True)
    assert search.study.trials[0].state == TrialState.FAIL


def test_same_seed_same_suggestions():
    def sequence(seed):
        search = searcher(seed=seed)
        out = []
        for i in range(8):
            out.append(search.suggest(str(i)))
            play_rest = [0.1 * (i % 3), 0.2]
            for step, v in enumerate(play_rest[:-1], start=1):
                search.on_trial_result(
                    str(i), {"eval/return": v, "iteration": step, "training_iteration": step}
                )
            search.on_trial_complete(
                str(i), {"eval/return": play_rest[-1], "iteration": 2, "training_iteration": 2}
            )
        return out

    assert sequence(3) == sequence(3)
    assert sequence(3) != sequence(4)


def test_random_searcher_samples_uniformly():
    """Random search draws each coordinate uniformly: the learning rate on a log scale, the
    schedules and depths equally often (300 draws; bounds 5 sigma wide)."""
    search = PruningAwareOptunaSearch(
        default, make_sampler("random", 0, 300), "eval/return", "max", MAX_T
    )
    draws = [search.suggest(str(i)) for i in range(300)]
    log_lr = np.log10([d["train.lr"] for d in draws])
    low, high = np.log10(3e-4), np.log10(1e-2)
    thirds = np.histogram(log_lr, bins=3, range=(low, high))[0]
    assert all(60 <= n <= 140 for n in thirds), thirds  # 100 expected in each
    schedules = Counter(d["diffusion.schedule"] for d in draws)
    assert set(schedules) == {"cosine", "linear", "loglinear"}
    assert all(60 <= n <= 140 for n in schedules.values()), schedules
    depths = Counter(d["model.depth"] for d in draws)
    assert set(depths) == {1, 2, 3, 4} and all(40 <= n <= 110 for n in depths.values()), depths


def test_an_extension_searches_on_in_the_same_study(tmp_path):
    """A search extended by --resume --num-samples N runs a new searcher on the same stored
    study (search/tuner.py): TPE sees every earlier trial, and nothing is proposed twice."""

    def storage():
        return JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))

    def searcher_of(seed):
        sampler = make_sampler("tpe", seed, 7, startup=2)
        return PruningAwareOptunaSearch(
            default, sampler, "eval/return", "max", MAX_T, storage=storage(), study_name="x"
        )

    first = searcher_of(0)
    for i in range(4):
        play(first, f"a{i}", [0.1 * i] * MAX_T)
    more = searcher_of(1)
    for i in range(3):
        play(more, f"b{i}", [0.2] * MAX_T)
    study = optuna.load_study(study_name="x", storage=storage())
    proposed = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(study.trials) == 7 and len(set(proposed)) == 7
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_the_studys_best_trial_is_the_searchs_when_returns_tie():
    """Two trials solve every episode (the same return); the search ranks the one with the
    lower validation loss first, and so does the study."""
    search = searcher()
    for trial_id, loss in (("a", 0.9), ("b", 0.4)):
        search.suggest(trial_id)
        last = {"eval/return": 0.95, "val/loss": loss, "iteration": MAX_T}
        search.on_trial_complete(trial_id, {**last, "training_iteration": MAX_T})
    best = search.study.best_trial
    assert best.number == 1 and best.value == pytest.approx(0.95, abs=1e-5)


def test_a_trial_the_restored_searcher_lost_is_found_in_the_study():
    """Proposed after Ray last saved the searcher's state, then resumed after a kill -9: the
    restored searcher has no Optuna trial for it, the study (written as it goes) has."""
    search = searcher()
    search.suggest("a")
    search._ot_trials.pop("a")  # what the older saved state holds
    search.on_trial_result("a", {"eval/return": 0.1, "iteration": 1, "training_iteration": 1})
    last = {"eval/return": 0.3, "iteration": 2, "training_iteration": 2}
    search.on_trial_complete("a", last)
    assert states(search) == [(TrialState.PRUNED, 0.3, {1: 0.1, 2: 0.3})]
