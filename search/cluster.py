"""Where trials run: start a local Ray (with its dashboard) or join a cluster, see what it
has, check that every node shares the results folder, and stop what was started.
(``search/placement.py`` decides what one trial gets.)"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path

import ray
import torch
from ray.exceptions import AuthenticationError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from data.errors import BadInput

LOCALHOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 120  # a fresh worker node first unpacks the code (runtime_env)
REPOSITORY = Path(__file__).resolve().parents[1]
# The project's code for cluster workers, without results, generated data or environments.
CODE = {
    "working_dir": str(REPOSITORY),
    "excludes": ["results/", "data/cache/", "docs/", "**/__pycache__/"],  # Ray skips .git, .venv
}


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
            with stderr_held():
                context = ray.init(address=address, runtime_env=CODE, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, AuthenticationError) as error:
            if refused_token(error):
                raise BadInput(
                    f"the Ray cluster at {address} wants its token: set RAY_AUTH_MODE=token "
                    "and RAY_AUTH_TOKEN to the output of `ray get-auth-token` on its head "
                    "(or copy that token to ~/.ray/auth_token here)"
                ) from None
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise BadInput(
                f"cannot join the Ray cluster at {address} ({first}); start it with "
                "`ray start --head` and check --address"
            ) from None
    else:
        if dashboard_host != LOCALHOST:
            print(
                f"warning: the Ray dashboard listens on {dashboard_host}: anyone who can reach "
                "this machine sees it; keep its token private, or use an SSH tunnel instead",
                file=sys.stderr,
            )
        context = ray.init(
            # Our own instance, even where a Ray cluster already runs on this machine (which
            # ray.init would join, refusing num_cpus): --address auto joins that one.
            address="local",
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


@contextlib.contextmanager
def stderr_held():
    """Ray's C++ core writes its connection retries straight to file descriptor 2: hold them
    back while joining, so a refused join ends in our one line; replay them if it worked."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))


def refused_token(error: BaseException | None) -> bool:
    """Whether joining failed on authentication. Ray wraps that in a ConnectionError, at
    times with the AuthenticationError itself as the cause, at times only its text."""
    while error is not None:
        if isinstance(error, AuthenticationError) or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__
    return False


def check_shared(results_dir: Path) -> None:
    """Every node of the cluster must see ``results_dir``: trials write their checkpoints and
    results where they run, and the driver reads them back (Ray does not copy between nodes).
    Writes a random marker here and asks each node whether it reads the same bytes."""
    marker = results_dir.resolve() / f".shared-{secrets.token_hex(8)}"
    marker.write_text(marker.name)
    try:
        nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
        probes = {
            reads.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote(str(marker)): node
            for node in nodes
        }
        answered, _ = ray.wait(list(probes), num_returns=len(probes), timeout=PROBE_TIMEOUT_S)
        sees = {probes[ref] for ref, ok in zip(answered, ray.get(answered), strict=True) if ok}
    finally:
        marker.unlink()
    blind = sorted({address for node, address in nodes.items() if node not in sees})
    if blind:
        raise BadInput(
            f"--results-dir {results_dir} is not on a filesystem shared with node(s) "
            f"{', '.join(blind)}: mount one shared filesystem (NFS, EFS, Lustre) at the same "
            "path on every node and pass that path as --results-dir"
        )


@ray.remote(num_cpus=0)
def reads(path: str) -> bool:
    marker = Path(path)
    return marker.exists() and marker.read_text() == marker.name


def token_auth() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


def mps_available() -> bool:
    return torch.backends.mps.is_available()


def resources() -> dict:
    """What the Ray cluster the search runs on has: its CPUs, GPUs, ..."""
    return ray.cluster_resources()


@contextlib.contextmanager
def session(address: str | None, dashboard_host: str):
    """Ray for the length of the block: the caller's own session when one is running (left
    running), else a local Ray or the cluster at ``address``, stopped at the end. Yields the
    dashboard URL ('' when this code did not start it)."""
    if ray.is_initialized():
        yield ""
        return
    url = start(address, dashboard_host)
    try:
        yield url
    finally:
        if ray.is_initialized():
            ray.shutdown()
