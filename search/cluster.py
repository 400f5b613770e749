"""Where trials run: start a local Ray (with its dashboard) or join a cluster, and decide the
resources of one trial and how many run at once.

On a CPU machine each trial gets one core and there is one trial per core. With CUDA, trials
take a fraction of a GPU (four per GPU by default: one small policy leaves a GPU mostly
idle). Ray knows no MPS resource, so on Apple silicon trials that share the MPS device run
under their own concurrency cap.
"""

from __future__ import annotations

import math
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import ray
import torch

from data.errors import BadInput

LOCALHOST = "127.0.0.1"
TRIALS_PER_GPU = 4
MPS_TRIALS = 2  # trials sharing one Apple GPU
CONNECT_TIMEOUT_S = 10
REPOSITORY = Path(__file__).resolve().parents[1]
# The project's code for cluster workers, without results, generated data or environments.
CODE = {
    "working_dir": str(REPOSITORY),
    "excludes": ["results/", "data/cache/", "docs/", "**/__pycache__/"],  # Ray skips .git, .venv
}


@dataclass(frozen=True)
class Placement:
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    device: str  # cpu | cuda | mps: what a trial's train.device becomes

    def describe(self) -> str:
        gpus = f", {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else ""
        return (
            f"{self.max_concurrent} trial(s) at once, each {self.cpus_per_trial:g} CPU{gpus} "
            f"on {self.device}"
        )


def plan(
    resources: dict,
    cpus_per_trial: float | None,
    gpus_per_trial: float | None,
    max_concurrent: int | None,
    mps: bool,
) -> Placement:
    """Resources of one trial and the concurrency cap, from the cluster's resources and the
    user's flags (None: autodetect)."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if gpus_per_trial is not None and gpus_per_trial > gpus:
        raise BadInput(
            f"--gpus-per-trial {gpus_per_trial:g} is more than the {gpus:g} GPU(s) Ray sees; "
            "use at most that (fractions such as 0.25 share a GPU) or leave it out"
        )
    if gpus_per_trial is None:
        gpus_per_trial = 1 / TRIALS_PER_GPU if gpus > 0 else 0.0
    if gpus_per_trial > 0:
        device, slots = "cuda", math.floor(gpus / gpus_per_trial + 1e-9)
        cpus_per_trial = cpus_per_trial or max(1, math.floor(cpus / slots))
    elif mps:
        device, slots = "mps", MPS_TRIALS
        cpus_per_trial = cpus_per_trial or 1
    else:
        device = "cpu"
        cpus_per_trial = cpus_per_trial or 1
        slots = math.floor(cpus / cpus_per_trial)
    if cpus_per_trial > cpus:
        raise BadInput(
            f"--cpus-per-trial {cpus_per_trial:g} is more than the {cpus:g} CPU(s) Ray sees; "
            "use at most that"
        )
    concurrent = max_concurrent or max(1, slots)
    if device == "mps":
        concurrent = min(concurrent, MPS_TRIALS)
    return Placement(cpus_per_trial, gpus_per_trial, concurrent, device)


def local_resources() -> dict:
    """What a local Ray started here will see, known before starting it (flags are checked
    against it first, so a mistake costs no Ray start-up)."""
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def start(address: str | None, dashboard_host: str) -> str:
    """Join ``address`` or start a local Ray with its dashboard; returns the dashboard URL
    ('' without one). Token authentication stays as Ray sets it (on for a new local Ray).
    On a cluster the code reaches the workers as Ray's ``working_dir``: a worker node needs
    the dependencies installed, not the repository."""
    if address:
        check_reachable(address)
        try:
            context = ray.init(address=address, runtime_env=CODE, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise BadInput(
                f"cannot join the Ray cluster at {address} ({first}); start it with "
                "`ray start --head` and, with token auth, set RAY_AUTH_MODE=token here too"
            ) from None
    else:
        if dashboard_host != LOCALHOST:
            print(
                f"warning: the Ray dashboard listens on {dashboard_host}: anyone who can reach "
                "this machine sees it; keep its token private, or use an SSH tunnel instead",
                file=sys.stderr,
            )
        context = ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=True,
            dashboard_host=dashboard_host,
            log_to_driver=False,
            configure_logging=True,
            logging_level="WARNING",
        )
    url = context.dashboard_url or ""
    return url if not url or url.startswith("http") else f"http://{url}"


def check_reachable(address: str) -> None:
    """A HOST:PORT that nothing answers fails here in seconds, not after Ray's long retries."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--address {address!r} must be auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise BadInput(
            f"no Ray cluster answers at {address} ({error.strerror or error}); start one with "
            "`ray start --head` there or fix --address"
        ) from None


def token_auth() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


def mps_available() -> bool:
    return torch.backends.mps.is_available()


def stop() -> None:
    if ray.is_initialized():
        ray.shutdown()
