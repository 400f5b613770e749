import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import DEFAULT, Config, DataConfig, override
from core.tokens import NUM_ACTIONS

ROOT = Path(__file__).resolve().parents[1]
# val/loss separates even policies that never succeed yet, so ASHA has something to prune
# on the smoke budget (eval/return would be 0 for every trial and ties are never stopped).
SMOKE = ("--smoke", "--metric", "val/loss")

# The tests train tiny models, for which one thread is the fastest; with torch's default (one
# per core) every test spin-waits on cores that another process holds (measured: 30 s instead
# of 1.6 s for a trainer test beside two training runs).
torch.set_num_threads(1)


# Environments whose per-episode checks take seconds (LockedRoom: six rooms on a 19x19 grid,
# the explorer 110 steps an episode; 16x16 with eight moving balls): their cases run in the
# slow tier, so that the fast tier stays near 30 seconds.
LARGE = {"MiniGrid-LockedRoom-v0", "MiniGrid-Dynamic-Obstacles-16x16-v0"}


def by_size(env_ids) -> list:
    """``env_ids`` as pytest parameters, the LARGE ones marked slow."""
    return [pytest.param(i, marks=pytest.mark.slow) if i in LARGE else i for i in env_ids]


def cli(*args, cwd: Path, timeout: float = 600, env: dict | None = None):
    """``python run_search.py ARGS`` as a user runs it, in ``cwd``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def rows(folder: Path) -> list[dict]:
    """A search's trials.csv."""
    with open(folder / "trials.csv") as f:
        return list(csv.DictReader(f))


def tiny(env: str = "MiniGrid-Empty-5x5-v0", **sets) -> Config:
    """A configuration that trains in a second: real data, model, diffusion and rollouts."""
    config = dataclasses.replace(DEFAULT, data=DataConfig(env=env, episodes=12, seed=0, noise=0.0))
    small = {
        "model.hidden": 32,
        "model.depth": 1,
        "model.heads": 2,
        "model.horizon": 4,
        "train.iters": 2,
        "train.steps_per_iter": 5,
        "train.eval_every": 1,
        "train.eval_episodes": 3,
        "train.test_episodes": 4,
        "train.warmup_steps": 2,
        "train.threads": 1,
        # Greedy plans: an untrained policy's loops end at once instead of running to the
        # step limit (tests of sampling set a temperature themselves).
        "diffusion.temperature": 0.0,
    }
    for key, value in {**small, **sets}.items():
        config = override(config, key, value)
    return config


@pytest.fixture
def tiny_config():
    return tiny()


@pytest.fixture
def local_ray():
    """A Ray instance of one CPU on this machine, for the test's length."""
    import ray  # not at the top: the fast tier never starts Ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def pytest_collection_modifyitems(items):
    """With pytest-xdist (`make test`: -n 2 --dist loadgroup) the slow tests run one after
    another on one worker: they start Ray searches that each want both cores."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("slow"))


@pytest.fixture(autouse=True)
def fast_tier_stays_fast(request, monkeypatch):
    """The fast tier (``make test-fast``: tests not marked slow) starts no Ray and no
    subprocess; a test that tries is told to carry the mark instead."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(
            f"{request.node.nodeid} starts Ray or a subprocess: mark it @pytest.mark.slow"
        )

    # The constructor, not the class: a library may subclass Popen when it is imported.
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    if "ray" in sys.modules:
        monkeypatch.setattr(sys.modules["ray"], "init", refuse)


def batch(B=5, H=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.stack(
        [
            torch.randint(0, 11, (B, 7, 7), generator=g),
            torch.randint(0, 6, (B, 7, 7), generator=g),
            torch.randint(0, 3, (B, 7, 7), generator=g),
        ],
        dim=-1,
    ).to(torch.uint8)
    direction = torch.randint(0, 4, (B,), generator=g)
    actions = torch.randint(0, NUM_ACTIONS, (B, H), generator=g)
    return image, direction, actions


def trained_looking(model):
    """Give the zero-initialised layers weights, as training would, so outputs depend on input."""
    torch.manual_seed(1)
    for p in model.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.05)
    return model
