"""Bad input gets a clear answer: exit status 2, one line saying what is wrong and how to mend
it, no traceback, and nothing already written damaged. Each case runs the command line's own
``main`` in this process, on real files (a trained checkpoint, datasets, configurations,
search folders); none of them may start Ray (tests/conftest.py refuses it here), so every
mistake is caught before anything costly starts."""

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import tiny
from core.config import DEFAULT, to_dict
from core.seed_runs import train_seeds
from data import blocks
from data.demos import generate, save
from data.errors import BadInput
from run_search import main
from search.settings import Settings


def run_main(*args, cwd: Path, monkeypatch) -> tuple[int, str, str]:
    """``run_search.py ARGS`` in ``cwd``: its exit status, stdout and stderr."""
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # argparse's own errors
            code = exit.code
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real files to break: a checkpoint, datasets, configs."""
    root = tmp_path_factory.mktemp("bad")
    config = tiny(**{"train.iters": 1})
    train_seeds(config, 1, root / "run", log=lambda line: None)
    good = root / "run" / "seed0" / "checkpoint.pt"
    payload = torch.load(good, weights_only=True)
    (root / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({**payload, "format_version": 99}, root / "old.pt")
    wrong_shape = {**payload, "config": {**payload["config"], "model": {"hidden": 64}}}
    torch.save(wrong_shape, root / "wrong_shape.pt")

    demos, meta = generate("MiniGrid-Empty-5x5-v0", 4, 0)
    save(demos, meta, root / "demos.npz")
    raw = (root / "demos.npz").read_bytes()
    (root / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    with np.load(root / "demos.npz", allow_pickle=False) as arrays:
        arrays = dict(arrays)
    np.savez(root / "v99.npz", **{**arrays, "format_version": np.array(99)})
    np.savez(root / "flat.npz", **{**arrays, "image": arrays["image"].reshape(-1, 49, 3)})

    (root / "folder.npz").mkdir()
    (root / "folder.gif").mkdir()
    (root / "a_file").write_text("not a folder\n")
    (root / "text.pt").write_text("a text file, not a checkpoint\n")
    (root / "bad.yaml").write_text("model:\n  hidden: [64\n")
    (root / "section.yaml").write_text("modle:\n  hidden: 64\n")
    (root / "one_misspelt.yaml").write_text("train:\n  lr: 0.001\nmodle:\n  hidden: 64\n")
    with open(root / "huge.yaml", "w") as huge:  # a few MB of valid YAML
        huge.write("train:\n  lr: 0.001\n" + "# padding\n" * 400_000)
    (root / "list.yaml").write_text("- 1\n- 2\n")
    # yaml.load would run this; a config file is data, read with yaml.safe_load.
    (root / "code.yaml").write_text('model: !!python/object/apply:os.system ["touch pwned"]\n')
    return root


BAD = {
    "unknown env": ("data", "--env", "NotAnEnv-v0"),
    "unsupported family": ("train", "--env", "MiniGrid-Playground-v0"),
    "id the expert does not solve": ("train", "--env", "BabyAI-PutNextS5N2Carrying-v0"),
    "misspelt id of moving obstacles": ("train", "--env", "MiniGrid-Dynamic-Obstacle-8x8-v0"),
    "shortest expert on a mission": (
        "train",
        "--env",
        "BabyAI-GoToLocal-v0",
        "--set",
        "data.expert=shortest",
    ),
    "shortest expert on memory": (
        "data",
        "--env",
        "MiniGrid-MemoryS7-v0",
        "--expert",
        "shortest",
    ),
    "horizon beyond the bot's look ahead": (
        "train",
        "--env",
        "MiniGrid-KeyCorridorS3R1-v0",
        "--set",
        "model.horizon=32",
    ),
    "zero episodes": ("data", "--env", "MiniGrid-Empty-5x5-v0", "--episodes", "0"),
    "noise of 1": ("data", "--env", "MiniGrid-Empty-5x5-v0", "--noise", "1"),
    "heads do not divide hidden": ("train", "--set", "model.heads=3"),
    "exec_steps > horizon": ("train", "--set", "diffusion.exec_steps=9"),
    "zero lr": ("train", "--set", "train.lr=0"),
    "negative lr": ("train", "--set", "train.lr=-0.001"),
    "zero batch": ("train", "--set", "train.batch_size=0"),
    "lr not a number": ("train", "--set", "train.lr=fast"),
    "unknown key": ("train", "--set", "model.width=64"),
    "unknown section": ("train", "--set", "optim.lr=0.1"),
    "set without =": ("train", "--set", "model.hidden"),
    "unknown schedule": ("train", "--set", "diffusion.schedule=cubic"),
    "unknown preset": ("train", "--preset", "huge"),
    "config and preset": ("train", "--config", "{root}/bad.yaml", "--preset", "seed"),
    "malformed yaml": ("train", "--config", "{root}/bad.yaml"),
    "unknown yaml section": ("train", "--config", "{root}/section.yaml"),
    "a misspelt section beside a good one": ("train", "--config", "{root}/one_misspelt.yaml"),
    "a configuration of megabytes": ("train", "--config", "{root}/huge.yaml"),
    "an abbreviated flag": ("train", "--seed", "3"),
    "evaluate out not json": ("evaluate", "{root}/run/seed0/checkpoint.pt", "--out", "x.txt"),
    "compare of a folder that is no run": ("compare", "{root}"),
    "yaml not a mapping": ("train", "--config", "{root}/list.yaml"),
    "yaml that runs code": ("train", "--config", "{root}/code.yaml"),
    "zero evaluation episodes": ("evaluate", "{root}/run/seed0/checkpoint.pt", "--episodes", "0"),
    "missing config": ("train", "--config", "{root}/nope.yaml"),
    "missing dataset": ("train", "--data", "{root}/nope.npz"),
    "truncated dataset": ("train", "--data", "{root}/truncated.npz"),
    "wrong-version dataset": ("train", "--data", "{root}/v99.npz"),
    "wrong-shape dataset": ("train", "--data", "{root}/flat.npz"),
    "missing checkpoint": ("evaluate", "{root}/nope.pt"),
    "truncated checkpoint": ("evaluate", "{root}/truncated.pt"),
    "wrong-version checkpoint": ("evaluate", "{root}/old.pt"),
    "checkpoint of another shape": ("evaluate", "{root}/wrong_shape.pt"),
    "not a gif": ("evaluate", "{root}/run/seed0/checkpoint.pt", "--gif", "{root}/x.png"),
    "existing run": ("train", "--out", "{root}/run", "--iters", "1"),
    "checkpoint as config": ("train", "--config", "{root}/run/seed0/checkpoint.pt"),
    "folder as config": ("train", "--config", "{root}/run"),
    "data out is a folder": (
        "data",
        "--env",
        "MiniGrid-Empty-5x5-v0",
        "--out",
        "{root}/folder.npz",
    ),
    "data out where nothing is written": (
        "data",
        "--env",
        "MiniGrid-Empty-5x5-v0",
        "--out",
        "/proc/x.npz",
    ),
    "data out under a file": (
        "data",
        "--env",
        "MiniGrid-Empty-5x5-v0",
        "--out",
        "{root}/a_file/x.npz",
    ),
    "gif is a folder": ("evaluate", "{root}/run/seed0/checkpoint.pt", "--gif", "{root}/folder.gif"),
    "train out is a file": ("train", "--out", "{root}/a_file", "--iters", "1"),
    "folder as dataset": ("train", "--data", "{root}/folder.npz"),
    "folder as checkpoint": ("evaluate", "{root}/run"),
    "text file as checkpoint": ("evaluate", "{root}/text.pt"),
    "evaluate set of a trained key": (
        "evaluate",
        "{root}/run/seed0/checkpoint.pt",
        "--set",
        "model.hidden=32",
    ),
    "evaluate set beyond the horizon": (
        "evaluate",
        "{root}/run/seed0/checkpoint.pt",
        "--set",
        "diffusion.exec_steps=99",
    ),
    "dataset as checkpoint": ("evaluate", "{root}/demos.npz"),
}
# What the one line must say, where a vaguer line was seen before.
SAYS = {
    "a misspelt section beside a good one": "did you mean 'model'?",
    "a configuration of megabytes": "not a configuration",
    "an abbreviated flag": "unrecognized arguments: --seed",
    "compare of a folder that is no run": "neither a search folder",
    "id the expert does not solve": "the agent starts carrying an object",
    "shortest expert on a mission": "data.expert=auto",
    "shortest expert on memory": "must see the start room's object",
    "misspelt id of moving obstacles": "did you mean MiniGrid-Dynamic-Obstacles-8x8-v0?",
    "horizon beyond the bot's look ahead": "use at most 16",
    "checkpoint as config": "not a text file",
    "folder as config": "is a folder",
    "data out is a folder": "is a folder",
    "data out where nothing is written": "cannot write",
    "data out under a file": "is a file, not a folder",
    "gif is a folder": "is a folder",
    "train out is a file": "is a file",
    "folder as dataset": "is a folder",
    "folder as checkpoint": "holds",
    "text file as checkpoint": "not a PyTorch checkpoint",
    "evaluate set of a trained key": "train again",
    "evaluate set beyond the horizon": "more than model.horizon",
    "dataset as checkpoint": "demonstrations file",
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, files, monkeypatch):
    args = [a.format(root=files) for a in BAD[case]]
    before = snapshot(files)
    code, _, stderr = run_main(*args, cwd=files, monkeypatch=monkeypatch)
    assert code == 2, (code, stderr[-2000:])
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "error" in lines[0]
    assert SAYS.get(case, "") in lines[0], lines[0]
    assert snapshot(files) == before, "a bad command changed files that existed before"


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A results folder holding one (fake) search, which no bad command may touch."""
    cwd = tmp_path_factory.mktemp("bad")
    (cwd / "results" / "taken").mkdir(parents=True)
    (cwd / "results" / "taken" / "search.yaml").write_text("settings: {}\n")
    (cwd / "results" / "taken" / "tuner.pkl").write_bytes(b"Ray's")
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


SEARCH_BAD = {
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
    "empty name": ("--name", ""),
    "an abbreviated search flag": ("--num-sample", "3"),
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
    "storage that cannot open": ("--storage", "sqlite:////nonexistent/folder/study.db"),
    "storage of an unknown kind": ("--storage", "nosuchdb://host/study"),
}


@pytest.mark.parametrize("case", list(SEARCH_BAD), ids=list(SEARCH_BAD))
def test_bad_search_input_is_one_line_and_exit_2(case, existing, monkeypatch):
    before = snapshot(existing)
    code, _, stderr = run_main(*SEARCH_BAD[case], cwd=existing, monkeypatch=monkeypatch)
    assert code == 2, (code, stderr[-2000:])
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert snapshot(existing) == before, "a bad command changed or left files"


@pytest.mark.parametrize(
    "values, says",
    [
        ({"num_samples": "8"}, "--num-samples is '8': use a value of type int"),
        ({"num_samples": 0}, "--num-samples is 0: use 1 or more"),
        ({"searcher": "grid"}, "--searcher is 'grid': use one of tpe, random"),
        ({"time_budget": -1.0}, "--time-budget is -1.0: use zero or more"),
    ],
)
def test_settings_built_by_hand_are_checked_when_built(values, says):
    """search.api users build Settings themselves: a bad value is the same one line."""
    with pytest.raises(BadInput, match=re.escape(says)):
        Settings(**values)


def test_evaluate_says_its_progress_on_stderr_and_keeps_stdout_for_its_figures(files, monkeypatch):
    monkeypatch.setattr(blocks, "PROGRESS_EVERY", 0.0)  # a line after every step
    checkpoint = files / "run" / "seed0" / "checkpoint.pt"
    code, stdout, stderr = run_main(
        "evaluate", checkpoint, "--episodes", 2, cwd=files, monkeypatch=monkeypatch
    )
    assert code == 0, stderr[-2000:]
    metrics, _ = json.JSONDecoder().raw_decode(stdout)
    assert metrics["test/episodes"] == 2
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("test episodes of ") for line in lines), lines[:3]
    assert "2/2 episodes ended" in lines[-1]
