"""The search's progress lines, fed the events Ray's controller sends (trials stand in as the
few fields the lines read)."""

from types import SimpleNamespace

from search import progress
from search.progress import ProgressLines


def trial(trial_id: str, status: str = "RUNNING", **config):
    return SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result={})


def test_one_line_an_event_with_the_stage_the_best_so_far_and_an_eta(capsys):
    lines = ProgressLines("trials", 3, 4, "eval/return", "max")
    a, b = trial("a", **{"train.lr": 0.002}), trial("b", **{"train.lr": 0.01})
    lines.on_trial_start(0, [a], a)
    lines.on_trial_start(0, [a, b], b)
    for i, value in enumerate([0.1, 0.3, 0.5, 0.7], 1):
        lines.on_trial_result(0, [a, b], a, {"iteration": i, "eval/return": value})
    lines.on_trial_result(0, [a, b], b, {"iteration": 1, "eval/return": 0.2})
    a.last_result = {"eval/return": 0.7}
    lines.on_trial_complete(0, [a, b], a)
    a.status = "TERMINATED"  # as Ray marks it once its callbacks have run
    b.last_result = {"eval/return": 0.2}
    lines.on_trial_complete(0, [a, b], b)
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 4
    assert said[0].endswith("trials 0/3 ended, 1 running | trial_a started (train.lr=0.002)")
    assert "trials 1/3 ended, 1 running | trial_a ran its budget, eval/return 0.700" in said[2]
    assert "best eval/return 0.700 (trial_a)" in said[2] and "ETA" in said[2]
    assert "trials 2/3 ended, 0 running | trial_b stopped at iteration 1" in said[3]


def test_finalists_are_named_and_a_lower_is_better_metric_is_judged_so(capsys):
    lines = ProgressLines("finalists", 2, 3, "val/loss", "min")
    run = trial("x", finalist="incumbent", **{"train.seed": 1})
    other = trial("y", finalist="trial_1", **{"train.seed": 1})
    lines.on_trial_result(0, [run, other], run, {"iteration": 1, "val/loss": 0.5})
    lines.on_trial_result(0, [run, other], other, {"iteration": 1, "val/loss": 0.9})
    lines.on_trial_error(0, [run, other], other)
    said = capsys.readouterr().out
    assert "trial_1 seed 1 failed" in said and "best val/loss 0.500 (incumbent seed 1)" in said


def eta_line(monkeypatch, capsys, runs: int, max_iters: int, results: list, ends: str) -> str:
    """The line said when ``ends`` completes (at 5 s after the last result; Ray still calls
    it RUNNING), after two runs started at 0 s reported ``results``: (second, run, iteration)."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    lines = ProgressLines("trials", runs, max_iters, "eval/return", "max")
    started = {name: trial(name) for name in ("a", "b")}
    everyone = list(started.values())
    for run in everyone:
        lines.on_trial_start(0, everyone, run)
    for at, name, i in results:
        now[0] = at
        lines.on_trial_result(0, everyone, started[name], {"iteration": i, "eval/return": 0.1})
    now[0] += 5
    lines.on_trial_complete(0, everyone, started[ends])
    return capsys.readouterr().out.splitlines()[-1]


def test_the_eta_waits_for_a_slow_run_left_alone_at_its_own_pace(capsys, monkeypatch):
    said = eta_line(monkeypatch, capsys, 2, 2, [(50, "a", 1), (100, "a", 2), (100, "b", 1)], "a")
    # The stage's pace says 35 s (one iteration left, 3 done in 105 s); the slow run's own
    # says its second iteration, 100 s, of which 5 have passed.
    assert said.endswith("ETA 1m35s"), said


def test_a_run_that_just_ended_adds_nothing_to_the_eta(capsys, monkeypatch):
    said = eta_line(monkeypatch, capsys, 3, 1, [(10, "b", 1), (295, "a", 1)], "a")
    # One run of one iteration left at the stage's pace (2 in 300 s): 150 s, not a's 295.
    assert said.endswith("ETA 2m30s"), said
