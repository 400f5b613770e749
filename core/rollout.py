"""The rollout engine: a policy plays episodes in the real MiniGrid environment, all of them
at once, one policy call for every episode that needs a new plan.

Receding horizon (Chi et al. 2023, Diffusion Policy): predict ``horizon`` actions, execute the
first ``exec_steps``, observe again, replan. Greedy planning in deterministic dynamics fails by
looping: when everything a plan depends on (the full environment state and, for a policy with
memory, what it remembers) repeats at a replanning point, the episode can never succeed and is
stopped at once and scored a failure (return 0). A policy that samples may leave such a state
the next time, so its episodes run to the environment's step limit.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.chunks import Visit
from core.memory import Memory
from core.policy import Policy
from core.tokens import mission_words
from data.demos import mission_of, padded
from data.envs import full_state, make_env, observe_lazily
from data.teachers import Expert, expert_length, teachers


class Episode:
    """One episode a policy plays: its environment, its mission, what it observes, remembers
    and has left to execute of its plan, and its figures (``length``, ``reward``,
    ``success``)."""

    def __init__(
        self,
        index: int,
        env_id: str,
        env_seed: int,
        policy: Policy,
        lazy: bool,
        render: bool,
        teacher=None,
    ):
        model = policy.config.model
        self.index, self.seed = index, int(env_seed)
        self.env = make_env(env_id, render_mode="rgb_array" if render else None, checked=False)
        self.observation, _ = self.env.reset(seed=self.seed)
        self.expert_length = expert_length(self.env)
        self.layout = full_state(self.env)  # the state it started from
        words = mission_words(policy.config)
        self.mission = mission_of(env_id, self.env.unwrapped.mission)[:words]
        # Views made only when the policy plans from them: MiniGrid builds one at every step
        # in Python, over half a rollout's time (data/envs.py).
        self.observe = observe_lazily(self.env) if lazy else None
        self.memory = Memory(model.history, model.map, self.env)
        self.memory.see(self.observation, self.env)
        self.teacher = teacher(self.env) if teacher is not None else None
        self.queue: list[int] = []  # the actions left of the current plan
        self.planned_from: set[bytes] = set()
        self.length, self.reward, self.success, self.done = 0, 0.0, False, False

    def looping(self) -> bool:
        """Whether a deterministic policy has planned from this very moment before: then it
        plans the same again, and so on forever. Marks the moment as planned from."""
        key = full_state(self.env) + self.memory.key()
        seen = key in self.planned_from
        self.planned_from.add(key)
        return seen

    def view(self) -> dict:
        if self.observe is not None:
            self.observation = self.observe()
        return self.observation

    def act(self, visits: list[Visit] | None) -> None:
        """Execute the next action of the plan; with ``visits``, the expert first labels the
        state it is taken in."""
        action, obs = self.queue.pop(0), self.observation
        plan = None
        if visits is not None:
            plan = self.teacher.label(self.env, obs)
            if plan is not None:  # no plan from here: nothing to learn
                visits.append(
                    Visit(
                        obs["image"],
                        obs["direction"],
                        padded(list(plan)),
                        action,
                        self.index,
                        self.length,
                        self.memory.square,
                        self.mission,
                    )
                )
        self.memory.add(obs, action)
        obs, reward, terminated, truncated, _ = self.env.step(action)
        if visits is not None and not (terminated or truncated):
            self.teacher.moved(plan, action, self.env)
        self.observation = obs  # None where views are made lazily: then nothing is mapped
        self.memory.see(obs, self.env)
        self.length += 1
        self.reward += float(reward)
        if terminated or truncated:
            self.done, self.success, self.queue = True, terminated and reward > 0, []

    def close(self) -> None:
        self.env.close()


def plan_for(policy: Policy, episodes: list[Episode]) -> None:
    """One policy call gives each of ``episodes`` its next plan."""
    views = [episode.view() for episode in episodes]
    images = np.stack([view["image"] for view in views])
    directions = np.array([view["direction"] for view in views], dtype=np.int64)
    remembers = policy.config.model.remembers
    past = Memory.stack([episode.memory for episode in episodes]) if remembers else None
    missions = np.stack([episode.mission for episode in episodes])
    missions = missions if missions.shape[1] else None
    planned = policy.plan(images, directions, past, missions)
    for episode, actions in zip(episodes, planned, strict=True):
        episode.queue = [int(a) for a in actions]


def play_episodes(
    policy: Policy,
    env_id: str,
    env_seeds: Iterable[int],
    frames: list | None = None,
    visits: list[Visit] | None = None,
    expert: Expert = "auto",
) -> list[Episode]:
    """Roll the policy out on the given env seeds, one Episode each. If ``frames`` is a list,
    the first episode's rendered frames are appended to it (for a GIF). If ``visits`` is a
    list, every state the policy acts in is appended to it with the ``expert``'s plan from
    there (DAgger)."""
    lazy = visits is None and not policy.config.model.remembers
    teacher = teachers(expert, env_id) if visits is not None else None
    episodes = [
        Episode(
            i, env_id, seed, policy, lazy, render=frames is not None and i == 0, teacher=teacher
        )
        for i, seed in enumerate(env_seeds)
    ]
    if frames is not None:
        frames.append(episodes[0].env.render())
    while True:
        replanning = [e for e in episodes if not e.done and not e.queue]
        if policy.deterministic:
            for episode in replanning:
                episode.done = episode.looping()  # a loop: scored a failure at once
        replanning = [e for e in replanning if not e.done]
        if replanning:
            plan_for(policy, replanning)
        live = [e for e in episodes if not e.done]
        if not live:
            break
        for episode in live:
            episode.act(visits)
            if frames is not None and episode.index == 0:
                frames.append(episode.env.render())
    for episode in episodes:
        episode.close()
    return episodes
