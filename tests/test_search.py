"""The search as a user runs it: real Ray, real trials, real files; killed and resumed."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import optuna
import pytest
import ray
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from PIL import Image
from ray import cloudpickle, tune
from ray.tune import ResultGrid

from conftest import ROOT, SMOKE, cli, rows
from core.config import DEFAULT, flat
from search.api import search
from search.console import restore_loggers
from search.export import export
from search.results import experiment_state
from search.upstream import experiment_snapshot

pytestmark = pytest.mark.slow  # real searches: Ray and subprocesses


@pytest.fixture(scope="session")  # once, however pytest-xdist interleaves other files' tests
def smoke(tmp_path_factory):
    """The one search that runs straight through, its study in an SQLite database."""
    cwd = tmp_path_factory.mktemp("smoke")
    storage = f"sqlite:///{cwd / 'study.db'}"
    result = cli(*SMOKE, "--name", "s", "--storage", storage, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "results" / "s", result


def test_smoke_search_runs_trials_and_asha_prunes(smoke):
    _, folder, result = smoke
    trials = rows(folder)
    assert len(trials) == 6 and len({t["trial_id"] for t in trials}) == 6
    statuses = [t["status"] for t in trials]
    assert set(statuses) <= {"completed", "pruned"}
    assert "pruned" in statuses and "completed" in statuses
    for t in trials:
        iterations = int(t["iterations"])
        assert iterations == 4 if t["status"] == "completed" else 1 <= iterations < 4
        assert t["node_id"] and float(t["busy_s"]) > 0
    # Canary of search/upstream.py: Ray's experiment snapshot, read as JSON, holds every trial.
    snapshot = experiment_snapshot(folder)
    assert set(snapshot) == {t["trial_id"] for t in trials}
    for state in snapshot.values():
        assert state["status"] == "TERMINATED" and (folder / state["folder"]).is_dir()
        assert state["last_result"]["iteration"] >= 1
    assert sorted(state["order"] for state in snapshot.values()) == list(range(1, 7))
    assert "best trial" in result.stdout and "best_config.yaml" in result.stdout
    assert "Ray dashboard: http://127.0.0.1:" in result.stdout
    lines = result.stdout.splitlines()
    started = [line for line in lines if " started (" in line]
    assert len([line for line in started if line.startswith("[") and " trials " in line]) == 6
    assert any("trials 6/6 ended, 0 running" in line for line in lines), "one line a trial"
    assert not any("╭" in line for line in lines), "no Ray boxes without --ray-progress"
    assert f"tensorboard --logdir {Path('results') / 's'}" in result.stdout


def test_the_first_trial_is_the_preset(smoke):
    _, folder, _ = smoke
    first = min(experiment_snapshot(folder).values(), key=lambda trial: trial["order"])
    params = json.loads((folder / first["folder"] / "params.json").read_text())
    preset = {k: v for k, v in flat(DEFAULT).items() if k in params}
    assert {k: params[k] for k in preset} == preset and len(preset) == len(params) == 7


def test_finalists_are_retrained_on_test_episodes_and_exported(smoke):
    cwd, folder, result = smoke
    table = finalist_rows(folder)
    names = [line.split(" | ")[0].removeprefix("| ") for line in table]
    assert "incumbent" in names and 2 <= len(names) <= 3, table
    assert all(" | 2/2 | " in line for line in table), "every finalist ran both seeds"
    assert all(" of 20 | " in line for line in table), "unseen layouts of 20 test episodes"
    runs = sorted(p.name for p in (folder / "finalists").iterdir() if p.is_dir())
    assert runs == sorted(f"{n}_seed{s}" for n in names for s in (1, 2))
    for run in runs:
        results = (folder / "finalists" / run / "result.json").read_text().splitlines()
        last = json.loads(results[-1])
        assert last["test/episodes"] == 20 and "test/return" in last and "eval/return" in last
        assert not any("test/return" in json.loads(line) for line in results[:-1])
        assert list((folder / "finalists" / run).glob("events.out.tfevents.*"))
    assert "finalists on test episodes" in result.stdout
    verdicts = ("Verdict: better", "Verdict: worse", "Verdict: undecided", "The incumbent (the")
    assert any(v in result.stdout for v in verdicts), result.stdout[-1500:]
    for run in runs:  # each test episode's figures, for the paired verdict, with the checkpoint
        (tested,) = (folder / "finalists" / run).glob("checkpoint_*/test_episodes.json")
        assert len(json.loads(tested.read_text())["episodes"]) == 20
    assert "Verdict: " in result.stdout or "The incumbent (the preset) is" in result.stdout
    with Image.open(folder / "plots" / "finalists.png") as image:
        assert image.size[0] > 200


def finalist_rows(folder: Path) -> list[str]:
    """The rows of summary.md's finalists table, best first."""
    summary = (folder / "summary.md").read_text()
    table = summary[summary.index("## Finalists") : summary.index("## Top")]
    return [line for line in table.splitlines() if line.startswith("| ")][1:]


def test_best_config_is_the_winning_finalist_and_retrains(smoke):
    cwd, folder, _ = smoke
    raw = yaml.safe_load((folder / "best_config.yaml").read_text())
    result = raw["result"]
    assert finalist_rows(folder)[0].startswith(f"| {result['finalist']} |"), "best test return"
    assert sorted(result["seeds"]) == [1, 2] and result["test/return"]["seeds"] == 2
    assert "search eval/return" in result and "incumbent" in result

    out = cwd / "retrain"
    retrained = cli("train", "--config", folder / "best_config.yaml", "--out", out, cwd=cwd)
    assert retrained.returncode == 0, retrained.stderr[-2000:]
    assert "test/return" in retrained.stdout and "test episodes" in retrained.stdout
    # Same seed, data, thread count and CPU: the retrain repeats the finalist's first seed.
    retrain = json.loads((out / "metrics.json").read_text())["mean"]
    run = folder / "finalists" / f"{result['finalist']}_seed1" / "result.json"
    finalist = json.loads(run.read_text().splitlines()[-1])
    for metric in ("val/loss", "eval/return", "test/return", "test/success"):
        assert retrain[metric] == pytest.approx(finalist[metric], abs=1e-6), metric


def test_summary_plots_and_tensorboard(smoke):
    _, folder, _ = smoke
    summary = (folder / "summary.md").read_text()
    assert "State: finished." in summary and "trial(s) early saved" in summary
    assert "| pruned |" in summary and "utilisation" in summary
    for name in ("curves.png", "params.png"):
        with Image.open(folder / "plots" / name) as image:
            assert image.size[0] > 300
    for trial in folder.glob("trial_*"):
        assert list(trial.glob("events.out.tfevents.*")), f"no TensorBoard events in {trial}"


def test_export_rewrites_the_same_files(smoke):
    cwd, folder, _ = smoke
    before = {n: (folder / n).read_bytes() for n in ("trials.csv", "best_config.yaml")}
    exported = cli("export", folder, cwd=cwd)
    assert exported.returncode == 0, exported.stderr
    assert before == {n: (folder / n).read_bytes() for n in before}


def session_processes(sid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry)) == sid:
                    found.append(int(entry))
    return found


def trial_processes(sid: int) -> list[int]:
    """The Ray worker processes of this search that run a trial now."""
    found = []
    for pid in session_processes(sid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ImplicitFunc.train"):
                found.append(pid)
    return found


def kill_session(sid: int) -> None:
    """kill -9 the driver and everything Ray started from it (its agents outlive it)."""
    for _ in range(3):
        for pid in session_processes(sid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def raising(claims: Path, folder: Path) -> bool:
    """Whether a trial has taken the raise fault and Ray has not yet written its failure
    down: killed then, the process would take the failure with it, never to be raised again."""
    claimed = claims / "raise@3"
    if not claimed.exists():
        return False
    owners = claimed.read_text().split()
    if not owners:  # being written
        return True
    error = folder / f"trial_{owners[0]}" / "error.txt"
    return not (error.exists() and "injected fault" in error.read_text(errors="replace"))


def test_a_search_that_crashes_and_is_killed_resumes_to_the_end(tmp_path, monkeypatch):
    """Faults injected for real, then the whole search killed -9 in the middle and resumed
    through the API inside the caller's own Ray session:

    * a trial process is killed with SIGKILL mid-iteration (Ray retries it from its checkpoint);
    * one trial's loss diverges from iteration 2 (an error once its retries are spent);
    * one trial raises at iteration 3 (retried once, from iteration 2's checkpoint);
    * the driver and every process Ray started are killed -9 while some trials have ended and
      others have not; the search is exported as interrupted, then resumed to the end."""
    claims = tmp_path / "claims"
    claims.mkdir()
    faults = {"RUN_SEARCH_FAULT": "diverge@2,raise@3", "RUN_SEARCH_FAULT_DIR": str(claims)}
    args = (*SMOKE, "--num-samples", 8, "--finalists", 1, "--finalist-seeds", 1, "--name", "k")
    folder = tmp_path / "results" / "k"
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "run_search.py"), *map(str, args)],
        cwd=tmp_path,
        env={**os.environ, **faults},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            reported = any(r.stat().st_size for r in folder.glob("trial_*/result.json"))
            if raising(claims, folder):  # a kill now would take the failure with it
                time.sleep(0.05)
                continue
            if killed is None and reported:
                for pid in trial_processes(driver.pid):  # in an iteration: trials run nonstop
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
                        break
            state = experiment_snapshot(folder) or {}  # Ray may be writing it
            ended = [t for t in state.values() if t["status"] in ("TERMINATED", "ERROR")]
            if killed and 2 <= len(ended) < len(state):
                break
            assert driver.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail(f"{folder} never reached the middle")
    finally:
        kill_session(driver.pid)
        driver.wait()

    monkeypatch.chdir(tmp_path)
    exported = export(folder)
    assert not exported.searched and exported.counts["unfinished"]
    assert "interrupted" in (folder / "summary.md").read_text()
    ended = {
        trial_id: (folder / state["folder"] / "result.json").read_bytes()
        for trial_id, state in experiment_state(folder).items()
        if state["status"] == "TERMINATED"
    }

    for name, value in faults.items():
        monkeypatch.setenv(name, value)  # the resumed trials' processes inherit them
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        found = search(results_dir=tmp_path / "results", name="k", resume=True)
        assert ray.is_initialized(), "the caller's session is left running"
    finally:
        ray.shutdown()
    assert found.finished and isinstance(found.results, ResultGrid)
    assert isinstance(found.finalist_results, ResultGrid) and found.best_config.is_file()

    trials = {t["trial_id"]: t for t in rows(folder)}
    assert len(trials) == 8, "each trial once"
    for trial_id, results in ended.items():
        state = experiment_state(folder)[trial_id]
        assert (folder / state["folder"] / "result.json").read_bytes() == results, (
            f"finished trial {trial_id} was run again"
        )
    configurations = [tuple(sorted(t.items())) for t in params_of(folder)]
    assert len(set(configurations)) == len(configurations), "a configuration was proposed twice"
    journal = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study_matches_the_trials(optuna.load_study(study_name="k", storage=journal), folder)
    summary = (folder / "summary.md").read_text()
    assert "State: finished." in summary and "## Finalists" in summary
    failures = summary[summary.index("## Failures") :].splitlines()
    diverged = {line.split()[1] for line in failures if "loss diverged" in line}
    assert len(diverged) == 1, failures
    (diverging,) = diverged
    assert trials[diverging]["status"] == "error", "a diverging trial is an error, not a result"
    own = [line for line in failures if line.startswith(f"- {diverging} ")]
    # Its retries are spent before or after the kill (Ray keeps the count, not the old lines).
    assert all("loss diverged" in x or "actor is dead" in x for x in own)
    others = [t for t in trials.values() if t["trial_id"] != diverging]
    assert {t["status"] for t in others} <= {"completed", "pruned"}, "the search went on"
    raised = [line.split()[1] for line in failures if "injected fault at iteration 3" in line]
    assert len(raised) == 1 and trials[raised[0]]["status"] == "completed"
    history = folder / f"trial_{raised[0]}" / "result.json"
    reported = [json.loads(line)["iteration"] for line in history.read_text().splitlines()]
    # Raised at the start of iteration 3: the retry goes on from iteration 2's checkpoint.
    assert reported.count(2) <= 1 and reported[-2:] == [3, 4], f"not resumed: {reported}"


def params_of(folder: Path) -> list[dict]:
    return [
        json.loads((folder / state["folder"] / "params.json").read_text())
        for state in experiment_state(folder).values()
    ]


def test_the_console_script_runs_from_a_fresh_venv(tmp_path):
    """`pip install` puts `mdps` on the venv's PATH (dependencies borrowed from this one)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    new_site = next((venv / "lib").glob("python*/site-packages"))
    (new_site / "borrowed.pth").write_text(site + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "-e", str(ROOT)], check=True, capture_output=True)
    mdps = venv / "bin" / "mdps"
    version = subprocess.run([str(mdps), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mdps "), version
    envs = subprocess.run([str(mdps), "envs"], capture_output=True, text=True, cwd=tmp_path)
    assert "MiniGrid-FourRooms-v0" in envs.stdout.splitlines()
    typo = subprocess.run(
        [str(mdps), "train", "--env", "MiniGrid-Fourrooms-v0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert typo.returncode == 2 and "did you mean MiniGrid-FourRooms-v0?" in typo.stderr


def study_matches_the_trials(study: optuna.Study, folder: Path) -> Counter:
    """Pruned trials are PRUNED in the study, with their intermediate values; those that ran
    the full budget COMPLETE. Returns the trials' counts by status."""
    statuses = Counter(t["status"] for t in rows(folder))
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.PRUNED] == statuses["pruned"] > 0
    assert states[TrialState.COMPLETE] == statuses["completed"] > 0
    assert all(t.intermediate_values for t in study.trials if t.state == TrialState.PRUNED)
    return statuses


def test_the_study_is_stored_and_optuna_dashboard_serves_it(smoke):
    """The search writes its Optuna study to the database --storage names, as it runs;
    optuna-dashboard serves it over HTTP."""
    cwd, folder, _ = smoke
    url = f"sqlite:///{cwd / 'study.db'}"
    statuses = study_matches_the_trials(optuna.load_study(study_name="s", storage=url), folder)
    with socket.socket() as probe:  # a free port on the loopback interface
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "optuna-dashboard"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, summaries = time.monotonic() + 60, None
        while summaries is None and time.monotonic() < deadline:
            studies = f"http://127.0.0.1:{port}/api/studies"
            with contextlib.suppress(OSError), urllib.request.urlopen(studies) as answer:
                summaries = json.load(answer)["study_summaries"]
            time.sleep(0.5)
        (summary,) = [s for s in summaries if s["study_name"] == "s"]
        study = f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}"
        with urllib.request.urlopen(study) as answer:
            served = json.load(answer)["trials"]
        assert Counter(t["state"] for t in served) == {
            "Pruned": statuses["pruned"],
            "Complete": statuses["completed"],
        }
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def fails_once(config):
    """Reports 3 iterations; the first time, dies after the first."""
    marker = Path(config["marker"])
    for iteration in range(1, 4):
        tune.report({"eval/return": iteration / 10})
        if iteration == 1 and not marker.exists():
            marker.touch()
            raise RuntimeError("killed")


@pytest.mark.slow
def test_a_search_saved_without_loggers_resumes_with_them(tmp_path):
    """A search saved by a version that did not give its loggers explicitly (its tuner.pkl
    holds none, and Ray's own are off here) writes result.json again once resumed."""
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    # Ray's workers cannot import this test module: ship fails_once by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        config = {"marker": str(tmp_path / "failed-once")}
        run = tune.RunConfig(storage_path=str(tmp_path), name="old", callbacks=[])
        tune.Tuner(fails_once, param_space=config, run_config=run).fit()
        tuner = tune.Tuner.restore(str(tmp_path / "old"), fails_once, resume_errored=True)
        restore_loggers(tuner)
        tuner.fit()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()
    (result,) = (tmp_path / "old").glob("*/result.json")
    lines = result.read_text().splitlines()
    iterations = [json.loads(line)["training_iteration"] for line in lines]
    assert iterations[-1] == 3
