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
from core.config import DEFAULT, flat, to_dict
from search.api import search
from search.console import restore_loggers
from search.results import experiment_state
from search.settings import Settings
from search.upstream import experiment_snapshot

pytestmark = pytest.mark.slow  # real searches: Ray and subprocesses


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("smoke")
    result = cli(*SMOKE, "--name", "s", cwd=cwd)
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
    assert f"tensorboard --logdir {Path('results') / 's'}" in result.stdout


def test_the_first_trial_is_the_preset(smoke):
    _, folder, _ = smoke
    first = min(experiment_snapshot(folder).values(), key=lambda trial: trial["order"])
    params = json.loads((folder / first["folder"] / "params.json").read_text())
    preset = {k: v for k, v in flat(DEFAULT).items() if k in params}
    assert {k: params[k] for k in preset} == preset and len(preset) == len(params) == 6


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
    verdicts = ("beats the incumbent", "intervals overlap", "The incumbent (the preset) is")
    assert any(v in result.stdout for v in verdicts), result.stdout[-1500:]
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


def kill_in_the_middle(args: tuple, cwd: Path, experiment: Path, ended_at_least: int) -> None:
    """Start a search and kill -9 it (driver and Ray) once ``experiment``'s snapshot shows at
    least ``ended_at_least`` trials ended and others not."""
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "run_search.py"), *map(str, args)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = experiment_snapshot(experiment) or {}  # Ray may be writing it
            ended = [t for t in state.values() if t["status"] == "TERMINATED"]
            if len(ended) >= ended_at_least and len(ended) < len(state):
                return
            assert driver.poll() is None, "the search ended before it could be killed"
            time.sleep(0.3)
        pytest.fail(f"{experiment} never reached the middle")
    finally:
        kill_session(driver.pid)
        driver.wait()


def test_killed_search_exports_and_resumes(tmp_path):
    folder = tmp_path / "results" / "k"
    kill_in_the_middle(
        (*SMOKE, "--max-iters", 8, "--num-samples", 8, "--finalists", 0, "--name", "k"),
        tmp_path,
        folder,
        ended_at_least=2,
    )

    exported = cli("export", folder, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "interrupted" in (folder / "summary.md").read_text()
    assert "unfinished" in {t["status"] for t in rows(folder)}
    done = {
        trial_id: (folder / state["folder"] / "result.json").read_bytes()
        for trial_id, state in experiment_state(folder).items()
        if state["status"] == "TERMINATED"
    }

    resumed = cli("--name", "k", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = rows(folder)
    assert len(trials) == 8 and len({t["trial_id"] for t in trials}) == 8, "each trial once"
    assert {t["status"] for t in trials} <= {"completed", "pruned"}
    for trial_id, results in done.items():
        state = experiment_state(folder)[trial_id]
        assert (folder / state["folder"] / "result.json").read_bytes() == results, (
            f"finished trial {trial_id} was run again"
        )
    assert "State: finished." in (folder / "summary.md").read_text()
    for export in ("best_config.yaml", "plots/curves.png", "plots/importance.png"):
        assert (folder / export).is_file(), f"{export} missing after the resume"
    # A searcher that lost its history would start its seeded sequence again and propose
    # the first trials' configurations a second time.
    configurations = [tuple(sorted(t.items())) for t in params_of(folder)]
    assert len(set(configurations)) == len(configurations), "a configuration was proposed twice"


def test_killed_during_the_finalists_exports_them_and_resumes(tmp_path):
    folder = tmp_path / "results" / "f"
    kill_in_the_middle((*SMOKE, "--name", "f"), tmp_path, folder / "finalists", ended_at_least=1)

    exported = cli("export", folder, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    summary = (folder / "summary.md").read_text()
    assert "interrupted" in summary and "## Finalists" in summary
    done = {
        name: (folder / "finalists" / state["folder"] / "result.json").read_bytes()
        for name, state in experiment_state(folder / "finalists").items()
        if state["status"] == "TERMINATED"
    }
    searched = (folder / "trials.csv").read_bytes()

    resumed = cli("--name", "f", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "State: finished." in (folder / "summary.md").read_text()
    table = finalist_rows(folder)
    assert len(table) >= 2 and all(" | 2/2 | " in line for line in table), table
    assert (folder / "trials.csv").read_bytes() == searched, "the search was not run again"
    for name, results in done.items():
        state = experiment_state(folder / "finalists")[name]
        assert (folder / "finalists" / state["folder"] / "result.json").read_bytes() == results


def params_of(folder: Path) -> list[dict]:
    return [
        json.loads((folder / state["folder"] / "params.json").read_text())
        for state in experiment_state(folder).values()
    ]


def test_crashing_killed_and_diverging_trials_do_not_sink_the_search(tmp_path):
    """Faults injected for real: a trial process is killed with SIGKILL mid-iteration, one
    trial's loss diverges from iteration 2, and one trial raises at iteration 5 (late, so the
    kill cannot swallow it before Ray hears of it)."""
    (tmp_path / "claims").mkdir()
    env = {
        **os.environ,
        "RUN_SEARCH_FAULT": "diverge@2,raise@5",
        "RUN_SEARCH_FAULT_DIR": str(tmp_path / "claims"),
    }
    args = (*SMOKE, "--max-iters", 6, "--name", "f")
    driver = subprocess.Popen(
        [sys.executable, str(ROOT / "run_search.py"), *map(str, args)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    folder = tmp_path / "results" / "f"
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        if any(r.stat().st_size for r in folder.glob("trial_*/result.json")):
            for pid in trial_processes(driver.pid):  # in an iteration: trials run nonstop
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
        time.sleep(0.2)
    _, stderr = driver.communicate(timeout=600)
    assert killed is not None, "no trial process was found to kill"
    assert driver.returncode == 0, stderr[-3000:]

    trials = {t["trial_id"]: t for t in rows(folder)}
    assert len(trials) == 6
    summary = (folder / "summary.md").read_text()
    failures = summary[summary.index("## Failures") :].splitlines()
    diverged = {line.split()[1] for line in failures if "loss diverged" in line}
    assert len(diverged) == 1, failures
    (diverging,) = diverged
    assert trials[diverging]["status"] == "error", "a diverging trial is an error, not a result"
    own = [line for line in failures if line.startswith(f"- {diverging} ")]
    assert len(own) == 3, "the first run and --max-failures 2 retries"
    assert all("loss diverged" in line or "actor is dead" in line for line in own)
    others = [t for t in trials.values() if t["trial_id"] != diverging]
    assert {t["status"] for t in others} <= {"completed", "pruned"}, "the search went on"
    assert sum("actor is dead" in line for line in failures) >= 1, "the killed trial is listed"
    injected = [line.split()[1] for line in failures if "injected fault at iteration 5" in line]
    raised = [trials[trial_id] for trial_id in injected]
    assert len(raised) == 1 and raised[0]["status"] in ("completed", "pruned")
    history = folder / f"trial_{raised[0]['trial_id']}" / "result.json"
    reported = [json.loads(line)["iteration"] for line in history.read_text().splitlines()]
    # Raised at the start of iteration 5: the retry goes on from iteration 4's checkpoint, so
    # 4 is not trained again and 5, 6 follow. (A kill just after a report may repeat an early
    # iteration: its checkpoint was not in yet. Under load Ray at times drops the result line
    # of iteration 4 from result.json when the next call raises at once; seen once in CI.)
    assert reported.count(4) <= 1 and reported[-2:] == [5, 6], f"not resumed: {reported}"


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A results folder holding one (fake) search, which no bad command may touch."""
    cwd = tmp_path_factory.mktemp("bad")
    (cwd / "results" / "taken").mkdir(parents=True)
    (cwd / "results" / "taken" / "search.yaml").write_text("settings: {}\n")
    (cwd / "a_file").write_text("not a folder\n")
    (cwd / "results" / "broken").mkdir()
    (cwd / "results" / "broken" / "tuner.pkl").write_bytes(b"not Ray's")
    (cwd / "results" / "broken" / "search.yaml").write_text("settings: [\n")
    damaged = cwd / "results" / "damaged"
    damaged.mkdir()
    (damaged / "search.yaml").write_text(yaml.safe_dump({"settings": {}, "base": to_dict(DEFAULT)}))
    (damaged / "tuner.pkl").write_bytes(b"Ray's")
    (damaged / "asha_state.yaml").write_text("pruned: {a: 1}\nrungs: {'1': {a: 0.5}}\n")
    (damaged / "trials.csv").write_text("trial_id,status\na,pruned\n")
    (damaged / "experiment_state-2026-11-26_00-00-00.json").write_text('{"trial_data": [[')
    return cwd


BAD = {
    "unknown space": ("--space", "huge"),
    "unknown searcher": ("--searcher", "grid"),
    "unknown scheduler": ("--scheduler", "pbt"),
    "unknown metric": ("--metric", "eval/fun"),
    "zero samples": ("--num-samples", "0"),
    "grace beyond budget": ("--max-iters", "2", "--grace-period", "3"),
    "reduction factor 1": ("--reduction-factor", "1"),
    "gpus the machine lacks": ("--gpus-per-trial", "0.5"),
    "resume of nothing": ("--name", "nothing", "--resume"),
    "resume without name": ("--resume",),
    "name taken": ("--name", "taken"),
    "name escapes results": ("--name", "../outside"),
    "name is a path": ("--name", "a/b"),
    "unwritable results dir": ("--results-dir", "a_file/results"),
    "no cluster at address": ("--address", "127.0.0.1:1"),
    "unknown environment": ("--env", "NotAnEnv-v0"),
    "export of a non-search": ("export", "results"),
    "export of nothing": ("export", "results/nothing"),
    "resume with damaged settings": ("--name", "broken", "--resume"),
    "export with damaged settings": ("export", "results/broken"),
    "negative retries": ("--max-failures", "-1"),
    "fractional samples": ("--num-samples", "2.5"),
    "fifo with rungs": ("--scheduler", "fifo", "--grace-period", "100"),
    "resume of a damaged snapshot": ("--name", "damaged", "--resume"),
    "export of a damaged snapshot": ("export", "results/damaged"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_search_input_is_one_line_and_exit_2(case, existing):
    before = {p: p.read_bytes() for p in sorted(existing.rglob("*")) if p.is_file()}
    result = cli(*BAD[case], cwd=existing, timeout=60)  # a bad --address fails fast too
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    after = {p: p.read_bytes() for p in sorted(existing.rglob("*")) if p.is_file()}
    assert after == before, "a bad command changed or left files"


def test_the_api_runs_inside_the_callers_ray_session_and_leaves_it_running(tmp_path):
    settings = Settings.given({"smoke": True, "metric": "val/loss", "finalists": 1})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        found = search(settings, tmp_path / "results", "api")
        assert ray.is_initialized(), "the caller's session is left running"
        assert isinstance(found.results, ResultGrid) and len(found.results) == 6
        assert isinstance(found.finalist_results, ResultGrid)
        assert len(found.finalist_results) == 2 * len(found.outcome["finalists"])
        assert found.finished and found.best_config.is_file()
        assert found.folder == tmp_path / "results" / "api"
    finally:
        ray.shutdown()


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


def test_the_study_is_stored_and_optuna_dashboard_serves_it(smoke):
    """The search writes its Optuna study to a journal file in its folder, pruned trials as
    PRUNED with their intermediate values; optuna-dashboard serves it over HTTP."""
    _, folder, _ = smoke
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.load_study(study_name="s", storage=storage)
    statuses = Counter(t["status"] for t in rows(folder))
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.PRUNED] == statuses["pruned"] > 0
    assert states[TrialState.COMPLETE] == statuses["completed"] > 0
    assert all(t.intermediate_values for t in study.trials if t.state == TrialState.PRUNED)
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
            str(folder / "optuna.journal"),
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
        url = f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}"
        with urllib.request.urlopen(url) as answer:
            served = json.load(answer)["trials"]
        assert Counter(t["state"] for t in served) == {
            "Pruned": statuses["pruned"],
            "Complete": statuses["completed"],
        }
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_a_finished_search_is_extended_by_resume_with_more_samples(tmp_path):
    """--resume --num-samples N runs the missing trials in an experiment of their own, with
    the same Optuna study (no configuration proposed twice), then chooses finalists anew."""
    args = (*SMOKE, "--num-samples", 4, "--finalists", 1, "--finalist-seeds", 1, "--name", "x")
    first = cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "results" / "x"
    before = (folder / "finalists").is_dir() and rows(folder)
    extended = cli("--name", "x", "--resume", "--num-samples", 7, cwd=tmp_path)
    assert extended.returncode == 0, extended.stderr[-3000:]
    trials = rows(folder)
    assert len(trials) == 7 and {t["trial_id"] for t in before} < {t["trial_id"] for t in trials}
    assert len(experiment_snapshot(folder / "more-1")) == 3, "the 3 new trials ran apart"
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    study = optuna.load_study(study_name="x", storage=storage)
    proposed = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(study.trials) == 7 and len(set(proposed)) == 7, "one study, nothing twice"
    summary = (folder / "summary.md").read_text()
    assert "State: finished." in summary and (folder / "finalists-1").is_dir()
    fewer = cli("--name", "x", "--resume", "--num-samples", 5, cwd=tmp_path)
    assert fewer.returncode == 2 and "not more than the 7 trials" in fewer.stderr


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
