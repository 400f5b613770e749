"""Training speed: samples/s of the real training step (Trainer.step: batch by index,
masked-diffusion loss, backward, clipping, AdamW, EMA) for the ``seed``, ``default`` and a
large configuration, and the model's FLOP/s divided by the FLOP/s of a large fp32 matrix
product measured in the same process, round by round.

    python -m bench.training                    # from the repository root; prints JSON
    python -m bench.training --rounds 7 --seconds 3 --threads 2
    python -m bench.training --configs default --set model.layout=encoder
    python -m bench.training --configs default --device cuda   # bf16 autocast, as `train` on CUDA

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one training step
(forward and backward): matrix products, the convolution and attention (SDPA), from the
shapes; element-wise work, normalisation and the optimiser count nothing, so the ratio says
how much of the step's time the arithmetic that matters gets. ``products_alone_ratio`` is
the same ratio for the step's matrix products replayed alone at their shapes: the ceiling
the step would reach if nothing else ran.

One thread by default, as a search trial gets on a CPU machine; on a shared machine two
threads also collapse whenever a core is taken (OpenMP's barriers wait for the slow one).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.measure import emit, load, machine, matmul_flops, median, sync
from core import config as cfg
from core.tokens import STATE_TOKENS, MapTokenizer
from core.trainer import Trainer
from data.demos import for_data

# A large configuration for scale: the default's recipe at the seed's width and more depth.
LARGE = dataclasses.replace(
    cfg.DEFAULT, model=dataclasses.replace(cfg.DEFAULT.model, hidden=256, depth=6, heads=8)
)
CONFIGS = {"seed": cfg.SEED, "default": cfg.DEFAULT, "memory": cfg.MEMORY, "large": LARGE}
# Every configuration trains on the same cached demonstrations: the step's cost depends on
# shapes only, and this file is the one the quality table's DoorKey-8x8 runs use.
DATA = {"data.env": "MiniGrid-DoorKey-8x8-v0", "data.episodes": 500, "data.noise": 0.3}


def trainer_for(config: cfg.Config, sets: list[str], device: str = "cpu") -> Trainer:
    for key, value in DATA.items():
        config = cfg.override(config, key, value, "bench")
    config = cfg.apply_sets(config, sets)
    return Trainer(cfg.validate(config), for_data(config.data), torch.device(device))


def step_flops(trainer: Trainer) -> int:
    with FlopCounterMode(display=False) as counter:
        trainer.step()
    return counter.get_total_flops()


def products_alone(trainer: Trainer, peak: float) -> float:
    """FLOP/s of the step's own matrix products (every mm and addmm of one step, at its
    shapes, on fresh contiguous tensors) divided by ``peak``: what the step would reach if
    nothing but its products ran."""
    with torch.profiler.profile(record_shapes=True) as profile:
        trainer.step()
    shapes = [
        e.input_shapes[:2] if e.name == "aten::mm" else e.input_shapes[1:3]
        for e in profile.events()
        if e.name in ("aten::mm", "aten::addmm")
    ]
    flops, busy = 0, 0.0
    for a, b in shapes:
        x, y = torch.randn(a), torch.randn(b)
        x @ y
        start = time.perf_counter()
        for _ in range(10):
            x @ y
        busy += (time.perf_counter() - start) / 10
        flops += 2 * a[0] * a[1] * b[1]
    return flops / busy / peak


def profile_shares(trainer: Trainer, steps: int = 10, top: int = 8) -> dict[str, float]:
    """torch.profiler over a few steps: the share of the step's time each aten op takes
    itself (the ``top`` largest), the profile that says where the time goes."""
    with torch.profiler.profile() as profile:
        for _ in range(steps):
            trainer.step()
    ops = [e for e in profile.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in ops)
    ops.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {e.key: round(e.self_cpu_time_total / total, 3) for e in ops[:top]}


def samples_per_s(trainer: Trainer, seconds: float) -> float:
    """Optimiser steps for about ``seconds`` (at least three)."""
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < seconds:
        trainer.step()
        steps += 1
    sync(trainer.device.type)
    return steps * trainer.config.train.batch_size / (time.perf_counter() - start)


def state_tokens(model: cfg.ModelConfig) -> int:
    """The view's 49 tokens, one per remembered step, one per patch of the map."""
    return STATE_TOKENS + model.history + MapTokenizer.tokens(model.map)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=2.0, help="training time a round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    parser.add_argument("--set", action="append", default=[], help="key=value, every config")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = load()
    trainers = {name: trainer_for(CONFIGS[name], args.set, args.device) for name in args.configs}
    flops = {}
    for name, trainer in trainers.items():
        for _ in range(3):  # warm-up: allocator, kernel choice
            trainer.step()
        flops[name] = step_flops(trainer) / trainer.config.train.batch_size
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    ratios: dict[str, list[float]] = {name: [] for name in trainers}
    peaks = []
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            # The peak just before and just after: both see the same load as the model.
            before = matmul_flops(device=args.device)
            rate = samples_per_s(trainer, args.seconds)
            peak = (before + matmul_flops(device=args.device)) / 2
            peaks.append(peak)
            rates[name].append(rate)
            ratios[name].append(rate * flops[name] / peak)
    results = {}
    for name, trainer in trainers.items():
        c = trainer.config
        results[name] = {
            "model": dataclasses.asdict(c.model),
            "batch_size": c.train.batch_size,
            "tokens": c.model.horizon
            + (state_tokens(c.model) if c.model.conditioning == "prefix" else 0),
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "mflop_per_sample": round(flops[name] / 1e6, 2),
            "samples_per_s": round(median(rates[name]), 1),
            "model_gflop_s": round(median(rates[name]) * flops[name] / 1e9, 2),
            "flops_ratio": round(median(ratios[name]), 3),
            "flops_ratio_rounds": [round(r, 3) for r in ratios[name]],
        }
        if args.device == "cpu":  # CPU time of the products and ops (on CUDA: launch time)
            results[name]["products_alone_ratio"] = round(products_alone(trainer, median(peaks)), 3)
            results[name]["profile_self_time_shares"] = profile_shares(trainer)
    emit(
        {
            "bench": "training",
            "machine": machine(),
            "device": args.device,
            "matmul_gflop_s": round(median(peaks) / 1e9, 1),
            "flop_count": "torch.utils.flop_counter over one step, forward + backward",
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "configs": results,
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
