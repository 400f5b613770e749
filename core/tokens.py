"""Tokens: the state tokenizer (egocentric view + direction) and the action vocabulary.

Action tokens are MiniGrid's seven actions plus a mask token. A plan predicts ``horizon``
actions from one observation; positions past the end of the expert's episode are filled
with ``done`` (6), which in the reach-the-goal environments never changes the world: the
model learns "the episode is over here" instead of inventing moves, and those positions
are never executed because the episode has already ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from minigrid.core.actions import Actions
from torch import nn

from core.config import MAP_PATCH, Config
from data.envs import mission_words as task_mission_words
from data.known_map import VIEW
from data.missions import VOCABULARY

NUM_ACTIONS = len(Actions)  # left, right, forward, pickup, drop, toggle, done
MASK = NUM_ACTIONS  # the absorbing token of masked diffusion; never predicted (SUBS)
VOCAB = NUM_ACTIONS + 1
NO_STEP = NUM_ACTIONS  # the action of a remembered step from before the episode began

STATE_TOKENS = VIEW * VIEW
NUM_OBJECTS, NUM_COLOURS, NUM_STATES, NUM_DIRECTIONS = 11, 6, 3, 4  # minigrid.core.constants


@dataclass
class Past:
    """What a policy with memory reads besides the current view: its last M steps, most
    recent first (their views, directions and the actions taken there; a step from before
    the episode began has the action ``NO_STEP``), and the S x S square around it of the map
    of what it has seen (data/known_map.py; S = 0 without a map)."""

    image: torch.Tensor  # (B, M, 7, 7, 3) uint8
    direction: torch.Tensor  # (B, M) long
    action: torch.Tensor  # (B, M) long
    map: torch.Tensor  # (B, S, S, 3) uint8

    @classmethod
    def empty(cls, batch: int, history: int, map_size: int, device) -> Past:
        """No earlier steps, nothing seen: before the episode's first view."""
        return cls(
            torch.zeros((batch, history, VIEW, VIEW, 3), dtype=torch.uint8, device=device),
            torch.zeros((batch, history), dtype=torch.long, device=device),
            torch.full((batch, history), NO_STEP, dtype=torch.long, device=device),
            torch.zeros((batch, map_size, map_size, 3), dtype=torch.uint8, device=device),
        )


class CellEmbedding(nn.Module):
    """A bag-of-words embedding of each cell's (object, colour, state), as in BabyAI."""

    def __init__(self, width: int):
        super().__init__()
        self.object = nn.Embedding(NUM_OBJECTS, width)
        self.colour = nn.Embedding(NUM_COLOURS, width)
        self.state = nn.Embedding(NUM_STATES, width)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(..., 7, 7, 3) views -> (..., 7, 7, width)."""
        image = image.long()
        return self.object(image[..., 0]) + self.colour(image[..., 1]) + self.state(image[..., 2])


class StateTokenizer(CellEmbedding):
    """49 tokens, one per view cell: the cells' embeddings, a 3x3 convolution that keeps the
    7x7 resolution so each token also sees its neighbours, a learned position per cell and the
    agent's direction added to every token."""

    def __init__(self, hidden: int):
        super().__init__(hidden)
        self.conv = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1)
        self.position = nn.Parameter(torch.zeros(1, STATE_TOKENS, hidden))
        self.direction = nn.Embedding(NUM_DIRECTIONS, hidden)
        nn.init.normal_(self.position, std=0.02)

    def forward(
        self, image: torch.Tensor, direction: torch.Tensor, film: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``film`` (B, 2D), each cell's features are scaled by 1 + its first half and
        shifted by its second (Perez et al. 2018) before the convolution."""
        cells = super().forward(image)  # (B, 7, 7, D) from [x, y, (object, colour, state)]
        if film is not None:
            scale, shift = film[:, None, None].chunk(2, dim=-1)  # each (B, 1, 1, D)
            cells = cells * (1 + scale) + shift
        grid = cells.permute(0, 3, 1, 2)  # (B, D, 7, 7)
        grid = grid + self.conv(nn.functional.gelu(grid))  # (B, D, 7, 7)
        tokens = grid.flatten(2).transpose(1, 2)  # (B, 49, D)
        return tokens + self.position + self.direction(direction.long())[:, None]  # (B, 49, D)


class PastTokenizer(nn.Module):
    """One token per remembered step (``model.history`` of them, most recent first): its whole
    view read by one linear map of the cells' embeddings (so where things were is kept, at a
    fraction of the current view's convolution), plus its direction, the action taken there and
    how long ago it was. Steps from before the episode began are one learned token."""

    def __init__(self, hidden: int, history: int, cell_width: int = 16):
        super().__init__()
        self.cells = CellEmbedding(cell_width)
        self.view = nn.Linear(STATE_TOKENS * cell_width, hidden)
        self.direction = nn.Embedding(NUM_DIRECTIONS, hidden)
        self.action = nn.Embedding(NUM_ACTIONS, hidden)
        self.age = nn.Parameter(torch.zeros(1, history, hidden))
        self.no_step = nn.Parameter(torch.zeros(hidden))
        nn.init.normal_(self.age, std=0.02)
        nn.init.normal_(self.no_step, std=0.02)

    def forward(self, image: torch.Tensor, direction: torch.Tensor, action: torch.Tensor):
        """image (B, M, 7, 7, 3), direction (B, M), action (B, M) with NO_STEP -> (B, M, D)."""
        cells = self.cells(image).flatten(2)  # (B, M, 49 * C)
        known = action != NO_STEP  # (B, M)
        tokens = (
            self.view(cells)
            + self.direction(direction.long())
            + self.action(action.clamp(max=NUM_ACTIONS - 1))
        )  # (B, M, D)
        return torch.where(known[..., None], tokens, self.no_step) + self.age


class MapTokenizer(nn.Module):
    """The square of the map around the agent (``model.map`` cells a side, in the agent's
    frame) as one token per PATCH x PATCH patch: a linear map of its cells' embeddings
    (a strided convolution) plus a learned position per patch. Unseen cells have their own
    embedding (MiniGrid's object 0), so the tokens say where the agent has not looked yet."""

    PATCH = MAP_PATCH

    @classmethod
    def tokens(cls, size: int) -> int:
        """How many tokens the S x S square becomes: one per patch."""
        return (size // cls.PATCH) ** 2

    def __init__(self, hidden: int, size: int, cell_width: int = 16):
        super().__init__()
        self.cells = CellEmbedding(cell_width)
        self.patches = nn.Conv2d(cell_width, hidden, kernel_size=self.PATCH, stride=self.PATCH)
        self.position = nn.Parameter(torch.zeros(1, self.tokens(size), hidden))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, known: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) -> (B, (S / PATCH)^2, D)."""
        cells = self.cells(known).permute(0, 3, 1, 2)  # (B, C, S, S) from [i, j, C]
        tokens = self.patches(cells).flatten(2).transpose(1, 2)  # (B, P, D)
        return tokens + self.position


def mission_words(config: Config) -> int:
    """How many words of its mission the policy of ``config`` reads: the task's count (none
    where the mission never varies), or none when ``model.mission`` is off."""
    return task_mission_words(config.data.env) if config.model.mission else 0


class MissionTokenizer(nn.Module):
    """One token per word of the mission (padded to the task's word count, data/missions.py):
    the word's embedding plus a learned position per word."""

    def __init__(self, hidden: int, words: int):
        super().__init__()
        self.word = nn.Embedding(len(VOCABULARY), hidden)
        self.position = nn.Parameter(torch.zeros(1, words, hidden))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, mission: torch.Tensor) -> torch.Tensor:
        """(B, W) word ids -> (B, W, D)."""
        return self.word(mission.long()) + self.position
