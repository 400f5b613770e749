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

import time
from collections.abc import Callable, Iterable

import numpy as np

from core.chunks import Visit
from core.memory import Memory
from core.policy import Policy
from core.tokens import mission_words
from data.blocks import Progress
from data.bot import LOOK_AHEAD
from data.demos import mission_of, padded
from data.envs import full_state, make_env, observe_lazily
from data.teachers import Expert, expert_length, label_episodes


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
        record: bool = False,
    ):
        model = policy.config.model
        self.index, self.seed = index, int(env_seed)
        self.env = make_env(env_id, render_mode="rgb_array" if render else None, checked=False)
        self.observation, _ = self.env.reset(seed=self.seed)
        # The yardstick of the episode's length; DAgger's episodes are never measured.
        self.expert_length = 0 if record else expert_length(self.env)
        self.layout = full_state(self.env)  # the state it started from
        words = mission_words(policy.config)
        self.mission = mission_of(env_id, self.env.unwrapped.mission)[:words]
        # Views made only when the policy plans from them: MiniGrid builds one at every step
        # in Python, over half a rollout's time (data/envs.py).
        self.observe = observe_lazily(self.env) if lazy else None
        self.memory = Memory(model.history, model.map, self.env)
        self.memory.see(self.observation, self.env)
        # With ``record``, every state the policy acts in, for the expert to label (DAgger).
        self.visits: list[Visit] | None = [] if record else None
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

    def act(self) -> None:
        """Execute the next action of the plan (recording the state it is taken in)."""
        action, obs = self.queue.pop(0), self.observation
        if self.visits is not None:
            self.visits.append(
                Visit(
                    obs["image"],
                    obs["direction"],
                    None,  # the expert's plan: labelled after the episode (``dagger_visits``)
                    action,
                    self.index,
                    self.length,
                    self.memory.square,
                    self.mission,
                )
            )
        self.memory.add(obs, action)
        obs, reward, terminated, truncated, _ = self.env.step(action)
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
    record: bool = False,
    log: Callable[[str], None] | None = None,
    what: str = "episodes",
) -> list[Episode]:
    """Roll the policy out on the given env seeds, one Episode each. If ``frames`` is a list,
    the first episode's rendered frames are appended to it (for a GIF). With ``record``, each
    episode keeps the states the policy acted in (``Episode.visits``). ``log`` hears how many
    have ended (of ``what``) while it takes long."""
    lazy = not record and not policy.config.model.remembers
    episodes = [
        Episode(i, env_id, seed, policy, lazy, render=frames is not None and i == 0, record=record)
        for i, seed in enumerate(env_seeds)
    ]
    progress = Progress(what, len(episodes), log, "episodes ended", closing=False)
    rounds = 0
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
            episode.act()
            if frames is not None and episode.index == 0:
                frames.append(episode.env.render())
        rounds += 1
        if log is not None:  # not a step of the rollout's own: only where someone listens
            # No more rounds than the step limit leaves the longest-lived episode, each no
            # dearer than the average so far (fewer episodes live as they end): an upper bound.
            rounds_left = max(
                (e.env.unwrapped.max_steps - e.length for e in live if not e.done), default=0
            )
            elapsed = time.monotonic() - progress.start
            ended = sum(e.done for e in episodes)
            progress(ended, rounds_left * elapsed / rounds, bound=True)
    progress(len(episodes), 0.0, bound=True)  # the last ones may end by looping
    for episode in episodes:
        episode.close()
    return episodes


def dagger_visits(
    policy: Policy,
    env_id: str,
    env_seeds: Iterable[int],
    expert: Expert = "auto",
    look_ahead: int = LOOK_AHEAD,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
) -> list[Visit]:
    """DAgger's data: every state the policy acts in on ``env_seeds``, with the ``expert``'s
    plan from there (``look_ahead`` actions of the bot's). The policy plays here, all episodes
    at once; the expert then replays each episode from its seed and actions to label it, by
    ``jobs`` processes (data/teachers.py). A state the expert has no plan from is left out."""
    what = f"relabelling {env_id}, the policy playing"
    episodes = play_episodes(policy, env_id, env_seeds, record=True, log=log, what=what)
    played = [(e.seed, [visit.executed for visit in e.visits]) for e in episodes]
    labels = label_episodes(env_id, expert, played, look_ahead, jobs, log)
    visits = [
        visit._replace(plan=padded(list(plan)))
        for episode, plans in zip(episodes, labels, strict=True)
        for visit, plan in zip(episode.visits, plans, strict=True)
        if plan is not None
    ]
    # In the order they were played (every live episode one step at a time), which is where
    # they join the training set.
    return sorted(visits, key=lambda visit: (visit.step, visit.episode))
