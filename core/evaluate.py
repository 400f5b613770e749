"""Rollout evaluation in the real MiniGrid environment, batched over episodes.

All live episodes that need a new plan share one policy call. Receding horizon (Chi et al.
2023, Diffusion Policy): predict ``horizon`` actions, execute the first ``exec_steps``,
observe again, replan. Greedy planning in deterministic dynamics fails by looping: when
the full environment state at a replanning point repeats, the episode can never succeed
and is stopped at once and scored a failure (return 0). A policy that samples may leave
such a state the next time, so its episodes run to the environment's step limit.

Two sets of episodes are rolled out here (``data/envs.py``): *selection* episodes give
``eval/*``, which the search ranks on; *test* episodes give ``test/*``, the final figures,
with how many of them start from a layout no training episode had.
"""

from __future__ import annotations

import io
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.checkpoint import load_checkpoint
from core.device import pick_device
from core.policy import Policy, policy_from_checkpoint
from core.tokens import NO_STEP, VIEW
from data.demos import padded
from data.envs import episode_seeds, full_state, layouts, make_env, observe_lazily
from data.expert import shortest_plan
from data.files import write_atomically
from data.known_map import KnownMap
from data.teachers import Expert, teachers


@dataclass
class Episode:
    seed: int
    expert_length: int
    layout: bytes  # the full state it started from
    length: int = 0
    reward: float = 0.0
    success: bool = False
    done: bool = False


def rollout(
    policy: Policy, env_id: str, episodes: int, seed: int, frames: list | None = None
) -> dict[str, float]:
    """Roll the policy out on ``episodes`` selection episodes of ``seed``. If ``frames`` is a
    list, the first episode's rendered frames are appended to it (for a GIF). Returns
    eval/success, eval/return, eval/len_ratio (mean over successful episodes)."""
    runs = play_episodes(policy, env_id, episode_seeds("selection", seed, episodes), frames)
    return summary(runs, "eval")


def on_test_episodes(
    policy: Policy, episodes: int, data, seed: int | None = None, frames: list | None = None
) -> dict[str, float]:
    """Roll the policy out on ``episodes`` test episodes (of ``seed``, by default the data
    seed) of the environment its data section (``DataConfig``) names. Returns test/success,
    test/return, test/len_ratio and, against the layouts of the demonstrations ``data`` names,
    how many test episodes start from a layout no training episode had and success on those."""
    block = data.seed if seed is None else seed
    runs = play_episodes(policy, data.env, episode_seeds("test", block, episodes), frames)
    seen = set(layouts(data.env, episode_seeds("training", data.seed, data.episodes)))
    unseen = [run for run in runs if run.layout not in seen]
    return {
        **summary(runs, "test"),
        "test/episodes": float(len(runs)),
        "test/unseen_episodes": float(len(unseen)),
        "test/success_unseen": float(np.mean([r.success for r in unseen])) if unseen else math.nan,
        "test/layouts": float(len({run.layout for run in runs})),
    }


def summary(runs: list[Episode], prefix: str) -> dict[str, float]:
    """Success rate, mean return and mean length / the expert's (over successful episodes)."""
    successes = [run for run in runs if run.success]
    return {
        f"{prefix}/success": float(np.mean([run.success for run in runs])),
        f"{prefix}/return": float(np.mean([run.reward for run in runs])),
        f"{prefix}/len_ratio": float(np.mean([r.length / r.expert_length for r in successes]))
        if successes
        else math.nan,
    }


def describe_unseen(metrics: dict) -> str:
    """One line on how much of a test report is on layouts training never had."""
    n, unseen = int(metrics["test/episodes"]), int(metrics["test/unseen_episodes"])
    if unseen:
        return (
            f"{unseen} of {n} test episodes start from a layout no training episode had; "
            f"success on those: {metrics['test/success_unseen']:.3f}"
        )
    return (
        f"none of the {n} test episodes starts from a layout training lacked (they show "
        f"{int(metrics['test/layouts'])} distinct layout(s), all in the demonstrations): the "
        "environment has too few layouts for any to be unseen"
    )


def play_episodes(
    policy: Policy,
    env_id: str,
    env_seeds,
    frames: list | None = None,
    visits: list | None = None,
    expert: Expert = "shortest",
) -> list[Episode]:
    """Roll the policy out on the given env seeds, one Episode each. If ``visits`` is a list,
    every state the policy acts in is appended to it as (image, direction, the ``expert``'s
    plan from there, the action taken, the episode's index, the step's index, the square of
    the map around the agent). Without visits and without memory, views are made only where
    the policy plans from them."""
    envs, obs, runs, seen, observe, remembered = [], [], [], [], [], []
    m = policy.config.model
    for i, env_seed in enumerate(env_seeds):
        mode = "rgb_array" if frames is not None and i == 0 else None
        env = make_env(env_id, render_mode=mode, checked=False)
        observation, _ = env.reset(seed=int(env_seed))
        runs.append(Episode(int(env_seed), len(shortest_plan(env)), full_state(env)))
        envs.append(env)
        obs.append(observation)
        seen.append(set())
        lazy = visits is None and not policy.memory
        observe.append(observe_lazily(env) if lazy else None)
        remembered.append(Memory(m.history, m.map, env))
        remembered[i].see(observation, env)
    if frames is not None:
        frames.append(envs[0].render())
    queues: list[list[int]] = [[] for _ in envs]
    teacher_in = teachers(expert)
    taught = [teacher_in(env) for env in envs] if visits is not None else []
    while True:
        replan = [i for i, run in enumerate(runs) if not run.done and not queues[i]]
        for i in replan if policy.deterministic else ():
            # With memory, the plan also depends on what is remembered: only when both
            # repeat is the next plan, and so everything after, the same as before.
            key = full_state(envs[i]) + remembered[i].key()
            if key in seen[i]:
                runs[i].done = True  # a loop: the same state, the same greedy plan, forever
            seen[i].add(key)
        replan = [i for i in replan if not runs[i].done]
        for i in replan:
            if observe[i] is not None:
                obs[i] = observe[i]()
        if replan:
            images = np.stack([obs[i]["image"] for i in replan])
            directions = np.array([obs[i]["direction"] for i in replan], dtype=np.int64)
            past = Memory.stack([remembered[i] for i in replan]) if policy.memory else None
            for i, actions in zip(replan, policy.plan(images, directions, past), strict=True):
                queues[i] = [int(a) for a in actions]
        live = [i for i, run in enumerate(runs) if not run.done]
        if not live:
            break
        for i in live:
            action = queues[i].pop(0)
            run = runs[i]
            if visits is not None:
                plan = taught[i].label(envs[i], obs[i])
                if plan is not None:  # no plan from here: nothing to learn
                    view = obs[i]["image"], obs[i]["direction"]
                    where = i, run.length, remembered[i].square
                    visits.append((*view, padded(list(plan)), action, *where))
            remembered[i].add(obs[i], action)
            observation, reward, terminated, truncated, _ = envs[i].step(action)
            if visits is not None and not (terminated or truncated):
                taught[i].moved(plan, action, envs[i])
            obs[i] = observation  # None where views are made lazily: then nothing is mapped
            remembered[i].see(observation, envs[i])
            run.length += 1
            run.reward += float(reward)
            if frames is not None and i == 0:
                frames.append(envs[0].render())
            if terminated or truncated:
                run.done = True
                run.success = terminated and reward > 0
                queues[i] = []
    for env in envs:
        env.close()
    return runs


class Memory:
    """What a policy with memory keeps of one episode: its last ``history`` steps, and with a
    map (``map`` > 0) the map of what it has seen and the square of it around the agent now."""

    def __init__(self, history: int, map_size: int, env):
        self.steps: deque = deque(maxlen=history)
        self.history = history
        self.known = KnownMap.of(env, map_size) if map_size else None
        self.square = np.zeros((map_size, map_size, 3), dtype=np.uint8)

    def see(self, observation: dict, env) -> None:
        """The agent's view from where it stands now goes onto the map."""
        if self.known is not None:
            u = env.unwrapped
            self.known.observe(observation["image"], observation["direction"], u.agent_pos)
            self.square = self.known.around(u.agent_dir, u.agent_pos)

    def add(self, observation: dict, action: int) -> None:
        """The step taken: ``action`` where ``observation`` was seen."""
        if self.history:
            self.steps.appendleft((observation["image"], observation["direction"], action))

    @staticmethod
    def stack(memories: list[Memory]) -> tuple[np.ndarray, ...]:
        """Views (B, M, 7, 7, 3), directions (B, M), actions (B, M), most recent first (steps
        from before the episode began are blank views with the action NO_STEP), and the
        squares of the maps (B, S, S, 3)."""
        history = memories[0].history
        image = np.zeros((len(memories), history, VIEW, VIEW, 3), dtype=np.uint8)
        direction = np.zeros((len(memories), history), dtype=np.int64)
        action = np.full((len(memories), history), NO_STEP, dtype=np.int64)
        for b, memory in enumerate(memories):
            for age, (view, facing, taken) in enumerate(memory.steps):
                image[b, age], direction[b, age], action[b, age] = view, facing, taken
        return image, direction, action, np.stack([memory.square for memory in memories])

    def key(self) -> bytes:
        """What the policy reads of its memory, as bytes (empty without memory)."""
        steps = b"".join(
            view.tobytes() + bytes([facing, taken]) for view, facing, taken in self.steps
        )
        return steps + self.square.tobytes()


def evaluate_checkpoint(
    path: Path,
    episodes: int,
    seed: int | None = None,
    gif: Path | None = None,
    sets: list[str] = (),
) -> dict[str, float]:
    """Roll a saved policy out on test episodes (block ``seed``, by default its data seed),
    planning as ``sets`` (``key=value`` of policy.PLANNING_KEYS) says where given; optionally
    save the first episode as a GIF."""
    payload = load_checkpoint(path)
    policy = policy_from_checkpoint(payload, pick_device("auto"), sets)
    frames: list | None = [] if gif is not None else None
    metrics = on_test_episodes(policy, episodes, policy.config.data, seed, frames)
    if gif is not None:
        save_gif(frames, gif)
    return metrics


def save_gif(frames: list, path: Path) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=250, loop=0
    )
    write_atomically(path, buffer.getvalue())
