"""What a policy with memory (``model.history``, ``model.map``) keeps of the episode it plays:
its last steps, and the map of what it has seen with the square of it around the agent."""

from __future__ import annotations

from collections import deque

import numpy as np

from core.tokens import NO_STEP, VIEW
from data.known_map import KnownMap


class Memory:
    """One episode's memory: its last ``history`` steps, and with a map (``map_size`` > 0) the
    map of what it has seen and the square of it around the agent now."""

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
                image[b, age], direction[b, age] = view, facing
                action[b, age] = taken
        return image, direction, action, np.stack([memory.square for memory in memories])

    def key(self) -> bytes:
        """Everything the policy's plans can come to depend on, as bytes (empty without
        memory): the remembered steps and the whole map. Not only the square it reads now:
        cells seen earlier come back into the square as the agent moves, so two moments with
        the same square but different maps can go on differently."""
        steps = b"".join(
            view.tobytes() + bytes([facing, taken]) for view, facing, taken in self.steps
        )
        return steps + (self.known.cells.tobytes() if self.known is not None else b"")
