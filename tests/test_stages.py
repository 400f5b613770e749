"""The search's stages over its record, on hand-made search folders: what moves a search from
its trials to its finalists and to done, what a resume runs again and what it leaves, what
reading a search writes (nothing). Ray itself is replaced by the files it would write
(tests/handmade.py); tests/test_search.py runs the real thing."""

import contextlib
import dataclasses

import pytest
import yaml
from handmade import SETTINGS, finalist_runs, trial, write_experiment, write_search

from core.config import to_dict
from search import export as export_module
from search import tuner
from search.export import export
from search.outcome import read_outcome
from search.record import Chosen, SearchRecord, read_record, write_record
from search.settings import Settings, base_config

FINISHED = [trial(1, [0.1, 0.3, 0.5]), trial(2, [0.2, 0.4, 0.6]), trial(3, [0.0]), trial(4, [0.1])]


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reading_a_search_writes_nothing_and_tells_an_unfinished_one(tmp_path):
    folder = tmp_path / "s"
    write_search(folder, [*FINISHED[:3], trial(4, [0.1], status="RUNNING")])
    before = snapshot(folder)
    outcome = read_outcome(folder)
    assert not outcome.searched and not outcome.finished
    assert outcome.counts == {"completed": 2, "pruned": 1, "error": 0, "unfinished": 1}
    assert outcome.best.trial_id == "00000002", "the best trial that ran the full budget"
    assert snapshot(folder) == before, "reading a search wrote to it"


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """The stages and the exports' tables here; the plots are drawn by tests/test_search.py."""
    monkeypatch.setattr(export_module, "plot_search", lambda *args, **kwargs: [])


class FakeRay:
    """Stands in for Ray: each ``fit`` writes the runs Ray would have left in the experiment
    (the next batch in ``batches``), and is counted."""

    def __init__(self, monkeypatch, batches):
        self.batches, self.fitted = list(batches), []
        monkeypatch.setattr(tuner, "fit", self.fit)
        monkeypatch.setattr(tuner, "trainable_for", lambda *args, **kwargs: None)
        monkeypatch.setattr(tuner, "for_data", lambda data, **kwargs: None)
        monkeypatch.setattr(tuner.cluster, "session", self.session)
        monkeypatch.setattr(tuner.cluster, "resources", lambda: {"CPU": 2.0})

    @staticmethod
    @contextlib.contextmanager
    def session(address, dashboard_host):
        yield ""

    def fit(self, experiment, trainable, fresh, max_failures, callbacks, progress, stop=None):
        runs = self.batches.pop(0)
        write_experiment(experiment, runs(experiment) if callable(runs) else runs)
        self.fitted.append(experiment.name)
        return experiment.name


def finalists_of(experiment):
    """The finalists' runs for what the record at the search folder chose: the winner is the
    second trial, on both seeds."""
    chosen = read_record(experiment.parent).chosen
    returns = {name: 0.9 if name == "trial_00000002" else 0.5 for name in chosen.configs}
    return finalist_runs(chosen.configs, chosen.seeds, returns)


def test_a_search_runs_its_trials_then_its_finalists_then_is_done(tmp_path, monkeypatch):
    ray = FakeRay(monkeypatch, [FINISHED, finalists_of])
    outcome, grids = tuner.run(SETTINGS, tmp_path, "s")
    assert ray.fitted == ["s", "finalists"]
    assert grids == {"results": "s", "finalist_results": "finalists"}
    record = read_record(tmp_path / "s")
    assert record.stage == "done" and outcome.finished
    assert set(record.chosen.configs) == {"incumbent", "trial_00000002", "trial_00000001"}
    assert record.chosen.seeds == [1, 2] and record.search_wall_s <= record.wall_s
    assert record.cpus == 2.0 and record.placement["max_concurrent"] == 2
    assert outcome.retrained[0].name == "trial_00000002"
    best = yaml.safe_load((tmp_path / "s" / "best_config.yaml").read_text())
    assert best["result"]["finalist"] == "trial_00000002"
    assert "State: finished." in (tmp_path / "s" / "summary.md").read_text()


def test_interrupted_trials_leave_the_search_at_its_trials(tmp_path, monkeypatch):
    ray = FakeRay(monkeypatch, [[*FINISHED[:3], trial(4, [0.1], status="RUNNING")]])
    outcome, _ = tuner.run(SETTINGS, tmp_path, "s")
    assert ray.fitted == ["s"], "no finalists while a trial is unfinished"
    assert (
        read_record(tmp_path / "s").stage == "trials" and read_record(tmp_path / "s").chosen is None
    )
    assert not outcome.searched
    assert "interrupted" in (tmp_path / "s" / "summary.md").read_text()


def test_a_resume_at_the_finalists_does_not_run_the_trials_again(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    chosen = Chosen({"incumbent": {}, "trial_00000002": {"train.lr": 0.0011}}, [1, 2])
    write_search(
        folder, FINISHED, stage="finalists", chosen=chosen, wall_s=60.0, search_wall_s=50.0
    )
    exported = export(folder)
    assert not exported.finished and exported.searched
    trials_csv = (folder / "trials.csv").read_bytes()
    ray = FakeRay(monkeypatch, [finalists_of])
    outcome, grids = tuner.run(None, tmp_path, "s", resume=True)
    assert ray.fitted == ["finalists"] and list(grids) == ["finalist_results"]
    record = read_record(folder)
    assert record.stage == "done" and record.chosen == chosen
    assert record.search_wall_s == 50.0 and record.wall_s >= 60.0, "wall time adds up"
    assert (folder / "trials.csv").read_bytes() == trials_csv
    assert outcome.finished


def test_no_finalists_asked_for_means_done_after_the_trials(tmp_path, monkeypatch):
    ray = FakeRay(monkeypatch, [FINISHED])
    settings = dataclasses.replace(SETTINGS, finalists=0)
    outcome, _ = tuner.run(settings, tmp_path, "s")
    assert ray.fitted == ["s"] and read_record(tmp_path / "s").stage == "done"
    assert outcome.finished and outcome.retrained == []


def test_a_done_search_resumed_runs_nothing_and_exports_the_same(tmp_path, monkeypatch):
    FakeRay(monkeypatch, [FINISHED, finalists_of])
    tuner.run(SETTINGS, tmp_path, "s")
    exports = {n: (tmp_path / "s" / n).read_bytes() for n in ("trials.csv", "best_config.yaml")}
    ray = FakeRay(monkeypatch, [])
    outcome, grids = tuner.run(None, tmp_path, "s", resume=True)
    assert ray.fitted == [] and grids == {} and outcome.finished
    assert exports == {n: (tmp_path / "s" / n).read_bytes() for n in exports}


def test_an_extension_runs_more_trials_apart_then_chooses_finalists_anew(tmp_path, monkeypatch):
    FakeRay(monkeypatch, [FINISHED, finalists_of])
    tuner.run(SETTINGS, tmp_path, "s")
    more = [trial(5, [0.5, 0.7, 0.95]), trial(6, [0.0])]
    ray = FakeRay(monkeypatch, [more, finalists_of])
    outcome, _ = tuner.run(None, tmp_path, "s", resume=True, extend_to=6)
    assert ray.fitted == ["more-1", "finalists-1"]
    record = read_record(tmp_path / "s")
    assert record.extensions == 1 and record.settings.num_samples == 6
    assert record.chosen.folder == "finalists-1" and "trial_00000005" in record.chosen.configs
    assert len(outcome.trials) == 6 and outcome.finished


def test_an_extension_of_an_unfinished_search_or_to_fewer_trials_is_refused(tmp_path):
    folder = tmp_path / "s"
    write_search(folder, [*FINISHED[:3], trial(4, [0.1], status="RUNNING")])
    before = snapshot(folder)
    with pytest.raises(tuner.BadInput, match="has not finished its 4 trials"):
        tuner.resumed(folder, 8)
    write_search(folder, FINISHED)
    with pytest.raises(tuner.BadInput, match="not more than the 4 trials"):
        tuner.resumed(folder, 4)
    assert read_record(folder).extensions == 0
    assert before.keys() == snapshot(folder).keys()


def test_a_record_written_before_stages_were_named_reads_at_its_stage(tmp_path):
    """search.yaml of an earlier version: no stage, the finalists under ``finalists``."""
    base = {"settings": SETTINGS.to_dict(), "base": {}, "wall_s": 12.0}
    chosen = {"configs": {"incumbent": {}}, "seeds": [1], "folder": "finalists"}
    for raw, stage in ((base, "trials"), ({**base, "finalists": chosen}, "finalists")):
        (tmp_path / "search.yaml").write_text(yaml.safe_dump(raw))
        record = read_record(tmp_path)
        assert record.stage == stage and record.wall_s == 12.0
    assert record.chosen == Chosen({"incumbent": {}}, [1], "finalists")


def test_a_record_round_trips_through_its_file(tmp_path):
    record = SearchRecord(
        SETTINGS,
        stage="finalists",
        base={"data": {"env": SETTINGS.env}},
        cpus=4.0,
        wall_s=3.5,
        search_wall_s=2.0,
        extensions=1,
        chosen=Chosen({"incumbent": {}, "trial_1": {"train.lr": 0.01}}, [1, 2], "finalists-1"),
    )
    write_record(tmp_path, record)
    assert read_record(tmp_path) == record
    assert base_config(SETTINGS).data.env == SETTINGS.env


def test_a_search_that_failed_before_any_trial_can_start_again_under_its_name(
    tmp_path, monkeypatch
):
    """A start that failed after writing its record but before Ray ran a trial (no tuner.pkl)
    does not lock its name: it can be started again, or resumed."""
    folder = tmp_path / "s"
    folder.mkdir()
    write_record(folder, SearchRecord(SETTINGS, base=to_dict(base_config(SETTINGS))))
    ray = FakeRay(monkeypatch, [FINISHED, finalists_of])
    outcome, _ = tuner.run(SETTINGS, tmp_path, "s")
    assert ray.fitted == ["s", "finalists"] and outcome.finished
    (folder / "tuner.pkl").unlink()
    for path in folder.glob("experiment_state-*"):
        path.unlink()
    write_record(folder, SearchRecord(SETTINGS, base=to_dict(base_config(SETTINGS))))
    ray = FakeRay(monkeypatch, [FINISHED, finalists_of])
    outcome, _ = tuner.run(None, tmp_path, "s", resume=True)
    assert ray.fitted == ["s", "finalists"] and outcome.finished


def test_a_spent_time_budget_ends_the_trials_and_the_finalists_still_run(tmp_path, monkeypatch):
    settings = dataclasses.replace(SETTINGS, time_budget=1e-3)
    ray = FakeRay(monkeypatch, [FINISHED[:2], finalists_of])  # 2 of 4 trials ran
    outcome, _ = tuner.run(settings, tmp_path, "s")
    record = read_record(tmp_path / "s")
    assert ray.fitted == ["s", "finalists"] and record.budget_spent and record.stage == "done"
    assert outcome.finished and len(outcome.trials) == 2
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert "The time budget (0.001 s) ended the trials after 2 of 4." in summary


def raced(rates: dict[str, float]):
    """Stands in for a finalists' round (the first, or a race's): each finalist of the round
    on each of its seeds, its test episodes succeeding at its ``rates``."""

    def runs(experiment):
        chosen = read_record(experiment.parent).chosen
        index = chosen.experiments().index(experiment.name)
        names = chosen.configs if index == 0 else chosen.races[index - 1]
        seeds = {name: chosen.seeds if index == 0 else names[name] for name in names}
        episodes = {
            name: {
                s: [0.9 * (i % 100 < 100 * rates[name]) for i in range(100)] for s in seeds[name]
            }
            for name in names
        }
        made = []
        for name in names:
            made += finalist_runs({name: {}}, seeds[name], {name: rates[name]}, episodes)
        return made

    return runs


RACE = {**dataclasses.asdict(SETTINGS), "finalists": 1, "finalist_seeds": 2, "race_seeds": 4}


def test_an_undecided_verdict_races_more_seeds_until_the_budget(tmp_path, monkeypatch):
    """A winner barely better than the incumbent (one test episode in a hundred): undecided on
    2 seeds, so one seed more each round until each has 4, where the paired verdict tells."""
    rates = {"incumbent": 0.5, "trial_00000002": 0.51}
    ray = FakeRay(monkeypatch, [FINISHED, raced(rates), raced(rates), raced(rates)])
    outcome, _ = tuner.run(Settings(**RACE), tmp_path, "s")
    assert ray.fitted == ["s", "finalists", "finalists-race1", "finalists-race2"]
    chosen = read_record(tmp_path / "s").chosen
    assert (
        chosen.races
        == [{"trial_00000002": [3], "incumbent": [3]}] * 1
        + [{"trial_00000002": [4], "incumbent": [4]}]
        or [set(r) for r in chosen.races] == [{"trial_00000002", "incumbent"}] * 2
    )
    assert all(len(f.runs) == 4 for f in outcome.retrained) and outcome.finished
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert "Verdict: better" in summary and "paired on 4 seeds" in summary
    assert "| trial_00000002 | 4/4 |" in summary and "The race added 2 round(s)" in summary


def test_a_decided_verdict_ends_the_race_at_once(tmp_path, monkeypatch):
    ray = FakeRay(monkeypatch, [FINISHED, raced({"incumbent": 0.3, "trial_00000002": 0.9})])
    outcome, _ = tuner.run(Settings(**RACE), tmp_path, "s")
    assert ray.fitted == ["s", "finalists"] and read_record(tmp_path / "s").chosen.races == []
    assert "Verdict: better" in (tmp_path / "s" / "summary.md").read_text()


def test_a_race_interrupted_resumes_at_its_round(tmp_path, monkeypatch):
    rates = {"incumbent": 0.5, "trial_00000002": 0.51}
    FakeRay(monkeypatch, [FINISHED, raced(rates), []])  # the first race round: nothing ran
    tuner.run(Settings(**RACE), tmp_path, "s")
    assert read_record(tmp_path / "s").stage == "finalists"
    ray = FakeRay(monkeypatch, [raced(rates), raced(rates)])
    outcome, _ = tuner.run(None, tmp_path, "s", resume=True)
    assert ray.fitted == ["finalists-race1", "finalists-race2"] and outcome.finished
