"""Tokens: the state tokenizer (egocentric view + direction) and the action vocabulary.

Action tokens are MiniGrid's seven actions plus a mask token. A plan predicts ``horizon``
actions from one observation; positions past the end of the expert's episode are filled
with ``done`` (6), which in the reach-the-goal environments never changes the world: the
model learns "the episode is over here" instead of inventing moves, and those positions
are never executed because the episode has already ended.
"""

from __future__ import annotations

import torch
from minigrid.core.actions import Actions
from torch import nn

NUM_ACTIONS = len(Actions)  # left, right, forward, pickup, drop, toggle, done
MASK = NUM_ACTIONS  # the absorbing token of masked diffusion; never predicted (SUBS)
VOCAB = NUM_ACTIONS + 1

VIEW = 7  # egocentric view is VIEW x VIEW cells, agent at (3, 6)
STATE_TOKENS = VIEW * VIEW
NUM_OBJECTS, NUM_COLOURS, NUM_STATES, NUM_DIRECTIONS = 11, 6, 3, 4  # minigrid.core.constants


class StateTokenizer(nn.Module):
    """49 tokens, one per view cell: a bag-of-words embedding of (object, colour, state) as
    in BabyAI, a 3x3 convolution that keeps the 7x7 resolution so each token also sees its
    neighbours, a learned position per cell and the agent's direction added to every token."""

    def __init__(self, hidden: int):
        super().__init__()
        self.object = nn.Embedding(NUM_OBJECTS, hidden)
        self.colour = nn.Embedding(NUM_COLOURS, hidden)
        self.state = nn.Embedding(NUM_STATES, hidden)
        self.conv = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1)
        self.position = nn.Parameter(torch.zeros(1, STATE_TOKENS, hidden))
        self.direction = nn.Embedding(NUM_DIRECTIONS, hidden)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, image: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        image = image.long()  # (B, 7, 7, 3): [x, y, (object, colour, state)]
        cells = self.object(image[..., 0]) + self.colour(image[..., 1]) + self.state(image[..., 2])
        grid = cells.permute(0, 3, 1, 2)  # (B, D, 7, 7)
        grid = grid + self.conv(nn.functional.gelu(grid))  # (B, D, 7, 7)
        tokens = grid.flatten(2).transpose(1, 2)  # (B, 49, D)
        return tokens + self.position + self.direction(direction.long())[:, None]  # (B, 49, D)
