"""Where trials run: resources and concurrency, devices (CUDA, MPS), and real clusters."""

import json
import os
import secrets
import subprocess
import sys

import pytest
import ray
import torch

from conftest import SMOKE, cli, rows
from core.device import pick_device
from core.trainable import granted_device
from data.errors import BadInput
from search import cluster
from search.cluster import check_shared, local_resources, mps_available
from search.placement import MPS_TRIALS, TRIALS_PER_GPU, plan


def test_cpu_machine_runs_one_trial_per_core():
    p = plan({"CPU": 2.0}, None, None, None, mps=False)
    assert (p.cpus_per_trial, p.gpus_per_trial, p.max_concurrent, p.device) == (1, 0, 2, "cpu")
    p = plan({"CPU": 8.0}, 2, None, None, mps=False)
    assert p.max_concurrent == 4


def test_gpus_are_shared_by_default_and_fractions_pack():
    p = plan({"CPU": 16.0, "GPU": 2.0}, None, None, None, mps=False)
    assert p.device == "cuda" and p.gpus_per_trial == 1 / TRIALS_PER_GPU
    assert p.max_concurrent == 2 * TRIALS_PER_GPU and p.cpus_per_trial == 2
    p = plan({"CPU": 16.0, "GPU": 1.0}, None, 0.5, None, mps=False)
    assert p.max_concurrent == 2


def test_mps_trials_run_under_their_own_cap():
    p = plan({"CPU": 10.0}, None, None, 8, mps=True)
    assert p.device == "mps" and p.max_concurrent == MPS_TRIALS and p.gpus_per_trial == 0


def test_user_concurrency_wins_on_cpu():
    assert plan({"CPU": 2.0}, None, None, 1, mps=False).max_concurrent == 1


@pytest.mark.parametrize(
    "resources, cpus, gpus, message",
    [
        ({"CPU": 2.0}, None, 1.0, "gpus-per-trial"),
        ({"CPU": 2.0, "GPU": 1.0}, None, 2.0, "gpus-per-trial"),
        ({"CPU": 2.0}, 4.0, None, "cpus-per-trial"),
    ],
)
def test_more_than_the_machine_has_is_bad_input(resources, cpus, gpus, message):
    with pytest.raises(BadInput, match=message):
        plan(resources, cpus, gpus, None, mps=False)


# ---- devices: CUDA from Ray's grant, Apple MPS by availability (patched: no MPS here) ----


@pytest.fixture
def apple_silicon(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])


def test_apple_silicon_trains_on_mps_with_its_own_cap(apple_silicon):
    """What the code decides from an Apple machine's answers (CUDA absent, MPS present, Ray
    granting no GPU): MPS everywhere, trials capped by the search itself, not by Ray."""
    assert pick_device("auto").type == "mps" and pick_device("mps").type == "mps"
    p = plan(local_resources(), None, None, None, mps=mps_available())
    assert (p.device, p.max_concurrent, p.gpus_per_trial) == ("mps", MPS_TRIALS, 0)
    assert granted_device(p.device) == "mps", "the trial trains where the search placed it"


def test_without_mps_a_request_for_it_is_bad_input(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(BadInput, match="train.device=mps is not available"):
        pick_device("mps")


def test_a_trial_uses_the_gpu_ray_granted_it(monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    assert granted_device("cpu") == "cuda" and granted_device("mps") == "cuda"
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    assert granted_device("cuda") == "cpu", "no GPU granted: a CUDA request falls back"


# ---- clusters ----


@pytest.mark.slow
def test_results_dir_every_node_sees_passes(local_ray, tmp_path):
    check_shared(tmp_path)
    assert list(tmp_path.iterdir()) == [], "the marker is removed"


@pytest.mark.slow
def test_results_dir_a_node_cannot_see_is_bad_input(local_ray, tmp_path, monkeypatch):
    # One machine has one filesystem: stand in for a worker node with its own disk.
    monkeypatch.setattr(cluster, "reads", ray.remote(num_cpus=0)(lambda path: False))
    node = ray.nodes()[0]["NodeManagerAddress"]
    with pytest.raises(BadInput, match=f"not on a filesystem shared with node.*{node}"):
        check_shared(tmp_path)
    assert list(tmp_path.iterdir()) == []


# Runs in its own process, so this test process's Ray state (its cached auth token) stays out.
CLUSTER = """
import json, sys
from ray.cluster_utils import Cluster
nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
nodes.add_node(num_cpus=1)
nodes.wait_for_nodes()
print(json.dumps([nodes.address, [n.node_id for n in nodes.list_all_nodes()]]), flush=True)
sys.stdin.read()  # until the test closes it
nodes.shutdown()
"""


@pytest.fixture(scope="module")
def two_nodes():
    """A real two-node Ray cluster on this machine, one CPU per node, with token
    authentication on (as Ray 2.61 will have every cluster): its address, node ids and the
    environment that holds its token."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    head = subprocess.Popen(
        [sys.executable, "-c", CLUSTER],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        address, node_ids = json.loads(head.stdout.readline())
        yield address, set(node_ids), env
    finally:
        head.stdin.close()
        head.wait(timeout=120)


@pytest.mark.slow
def test_search_joins_a_cluster_and_runs_on_both_nodes(two_nodes, tmp_path):
    address, node_ids, env = two_nodes
    args = ("--address", address, "--name", "c", "--num-samples", 4, "--finalists", 0)
    result = cli(*SMOKE, *args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(tmp_path / "results" / "c")
    assert len(trials) == 4
    assert {t["status"] for t in trials} <= {"completed", "pruned"}, "all finished"
    assert {t["node_id"] for t in trials} == node_ids


@pytest.mark.slow
def test_without_address_a_search_starts_its_own_ray_beside_a_running_cluster(two_nodes, tmp_path):
    args = ("--name", "own", "--num-samples", 1, "--finalists", 0)
    result = cli(*SMOKE, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(rows(tmp_path / "results" / "own")) == 1


@pytest.mark.slow
def test_joining_without_the_clusters_token_is_bad_input(two_nodes, tmp_path):
    address, _, _ = two_nodes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    result = cli(*SMOKE, "--address", address, "--name", "c", cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RAY_AUTH_MODE=token" in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "results" / "c").exists()
