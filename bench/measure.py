"""What every benchmark shares: the machine it ran on, the practical peak of its CPU, medians.

The machine may be shared with other work, so a benchmark measures ratios inside one run
(the thing and its reference side by side, interleaved round by round) and reports the
median over rounds; the load average before and after says how busy the machine was.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    """CPU model, cores, torch build and threads: the row's 'machine' column."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def load() -> list[float]:
    """1, 5 and 15-minute load averages: above the core count means others shared the CPU."""
    return [round(x, 2) for x in os.getloadavg()]


def matmul_flops(n: int = 2048, repeats: int = 4, device: str = "cpu") -> float:
    """FLOP/s of an n x n matrix product (2 n^3 FLOPs), averaged over ``repeats`` like the
    model's own rate (a best-of would hide the contention the model's rate includes): the
    practical peak of this process's threads, what a model's FLOP/s is divided by. fp32 on
    the CPU; on CUDA bf16 at 4x the size, the precision and scale the GPU's peak needs."""
    cuda = device == "cuda"
    n, dtype = (4 * n, torch.bfloat16) if cuda else (n, torch.float32)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b  # first call: allocation and kernel choice
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that a timer reads work done rather than launched."""
    if device == "cuda":
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def emit(report: dict) -> None:
    print(json.dumps(report, indent=2))
