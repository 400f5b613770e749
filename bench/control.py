"""Control speed: decision latency per replanning at batch 1, and evaluation throughput in
environment steps/s against the bare environment's steps/s measured in the same run.

    python -m bench.control                      # from the repository root; prints JSON
    python -m bench.control --checkpoint results/NAME/seed0/checkpoint.pt

Latency is ``Policy.plan`` on one observation (tensor in, ``sampling_steps`` denoiser calls,
actions out), the call ``rollout`` makes at every replanning. Throughput is ``rollout`` on
held-out episodes (all live episodes batched into one policy call, plus the loop check and
the expert's length for the length ratio) against ``env.step`` with random actions on the
same environment, interleaved round by round. Without ``--checkpoint`` the policy is the
preset trained for ``--train-steps`` optimiser steps, so episodes are of a realistic length
(an untrained policy loops and is stopped within a few plans).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from bench.measure import emit, load, machine, median
from core import config as cfg
from core.checkpoint import load_checkpoint
from core.policy import Policy, policy_from_checkpoint
from core.rollout import play_episodes
from core.tokens import mission_words
from core.trainer import Trainer
from data.demos import for_data, mission_of
from data.envs import episode_seeds, make_env


def trained_policy(config: cfg.Config, steps: int) -> Policy:
    trainer = Trainer(config, for_data(config.data), torch.device("cpu"))
    for _ in range(steps):
        trainer.step()
    model = trainer.eval_model.eval()  # as a checkpoint is played (policy_from_checkpoint)
    return Policy(model, config, trainer.device)


def latency_ms(policy: Policy, env_id: str, calls: int) -> list[float]:
    """Milliseconds of each batch-1 replanning, on the observations of a few resets."""
    env = make_env(env_id)
    observations = [env.reset(seed=int(s))[0] for s in episode_seeds("selection", 0, 16)]
    env.close()
    words = mission_words(policy.config)  # where the mission varies, the policy reads it
    times = []
    for i in range(calls + 5):
        obs = observations[i % len(observations)]
        image, direction = obs["image"][None], np.array([obs["direction"]], dtype=np.int64)
        mission = mission_of(env_id, obs["mission"])[None, :words] if words else None
        start = time.perf_counter()
        policy.plan(image, direction, missions=mission)
        if i >= 5:  # the first calls warm up the allocator
            times.append(1e3 * (time.perf_counter() - start))
    return times


def bare_steps_per_s(env_id: str, seconds: float, seed: int = 0) -> float:
    """env.step with random actions, resetting at the end of an episode; resets not timed. The
    environment as MiniGrid ships it (its own view code, not data/view.py's)."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    steps, busy = 0, 0.0
    while busy < seconds:
        actions = rng.integers(0, 3, size=256)  # left, right, forward: the moves that matter
        start = time.perf_counter()
        for action in actions:
            _, _, terminated, truncated, _ = env.step(int(action))
            steps += 1
            if terminated or truncated:
                busy += time.perf_counter() - start
                env.reset(seed=seed + steps)
                start = time.perf_counter()
        busy += time.perf_counter() - start
    env.close()
    return steps / busy


def rollout_steps_per_s(policy: Policy, env_id: str, episodes: int, round_: int) -> tuple:
    """(env steps/s of one evaluation, its success rate); each round plays other held-out
    seeds."""
    start = time.perf_counter()
    runs = play_episodes(policy, env_id, episode_seeds("selection", round_, episodes))
    elapsed = time.perf_counter() - start
    return sum(run.length for run in runs) / elapsed, float(np.mean([r.success for r in runs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--checkpoint", help="a checkpoint.pt to play instead of training one")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--calls", type=int, default=300, help="batch-1 replannings timed")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per evaluation")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value (with --checkpoint: how it plans, evaluate --set's keys)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = load()
    if args.checkpoint:
        payload = load_checkpoint(args.checkpoint)
        policy = policy_from_checkpoint(payload, torch.device("cpu"), args.set)
    else:
        config = cfg.override(cfg.preset(args.preset), "data.env", args.env, "bench")
        config = cfg.apply_sets(config, args.set)
        policy = trained_policy(cfg.validate(config), args.train_steps)
    d = policy.config.diffusion
    latencies = latency_ms(policy, args.env, args.calls)
    bare, played, ratios, success = [], [], [], []
    for round_ in range(args.rounds):
        before = bare_steps_per_s(args.env, 1.0, seed=round_)
        rate, solved = rollout_steps_per_s(policy, args.env, args.episodes, round_)
        reference = (before + bare_steps_per_s(args.env, 1.0, seed=round_ + 100)) / 2
        bare.append(reference)
        played.append(rate)
        ratios.append(rate / reference)
        success.append(solved)
    emit(
        {
            "bench": "control",
            "machine": machine(),
            "env": args.env,
            "policy": " ".join([args.checkpoint, *args.set])
            if args.checkpoint
            else " ".join([f"{args.preset} preset", *args.set, f"{args.train_steps} steps"]),
            "horizon": policy.config.model.horizon,
            "sampling_steps": d.sampling_steps,
            "exec_steps": d.exec_steps,
            "latency_ms_median": round(median(latencies), 3),
            "latency_ms_p90": round(float(np.percentile(latencies, 90)), 3),
            "eval_steps_per_s": round(median(played), 1),
            "bare_env_steps_per_s": round(median(bare), 1),
            "eval_over_bare": round(median(ratios), 3),
            "eval_over_bare_rounds": [round(r, 3) for r in ratios],
            "eval_success": success,
            "load_before_after": [load_before, load()],
        }
    )


if __name__ == "__main__":
    main()
