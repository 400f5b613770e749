"""DiT backbone: (state, noisy action tokens, t) -> action logits.

Follows facebookresearch/DiT models.py (Peebles & Xie 2023): adaLN-Zero blocks, a
sinusoidal timestep embedding followed by an MLP, a zero-initialised final layer. The
backbone knows nothing about masks, schedules or losses: the mask is one more input token.

Two ways to condition on the state (``ModelConfig.conditioning``):
- ``pool``: the seed's choice; the mean of the state tokens is added to the adaLN condition
  (cheap: only the action tokens are in the sequence, but where things are is averaged away).
- ``prefix``: the state tokens stand in front of the action tokens (in-context conditioning),
  so attention can read where things are.

With ``prefix``, ``ModelConfig.layout`` says how the state tokens take part:
- ``joint``: one sequence, every token attends to every other and is modulated by t.
- ``encoder``: the state tokens go through the same blocks unmodulated and attend only to
  each other, so they depend on the observation alone; the action tokens attend to them and
  to each other. A plan then computes the state's keys and values once and each denoising
  step runs the H action tokens only (49 + K*H token passes a plan instead of K*(49 + H)).

With ``ModelConfig.history`` M > 0 the policy remembers its last M steps: one token each
(``PastTokenizer``: the view, the direction, the action taken, the age) stands in front of the
current view's 49 tokens and takes part exactly as they do. With ``ModelConfig.map`` S > 0 the
square of the map of what it has seen around it (S x S cells, ``MapTokenizer``: one token per
3 x 3 patch) stands there too. On tasks whose mission varies (missions in words), the mission's
words (``MissionTokenizer``: one token each) stand in front as well, in every conditioning and
layout: in context with ``prefix``, in the pooled condition with ``pool``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from core.config import Config, ModelConfig
from core.tokens import (
    NUM_ACTIONS,
    VOCAB,
    MapTokenizer,
    MissionTokenizer,
    Past,
    PastTokenizer,
    StateTokenizer,
    mission_words,
)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t in [0, 1] (scaled to DiT's 0..1000 range), then an MLP."""

    def __init__(self, hidden: int, frequencies: int = 256):
        super().__init__()
        half = frequencies // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / half)
        # Constant: kept out of the state dict, computed once rather than at every call.
        self.register_buffer("freqs", freqs, persistent=False)  # (F/2,)
        self.mlp = nn.Sequential(
            nn.Linear(frequencies, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = 1000.0 * t.float()[:, None] * self.freqs[None]  # (B, F/2)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))  # (B, D)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def heads_of(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> queries, keys, values, each (B, h, T, D/h)."""
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, D // self.heads)  # (B, T, 3, h, D/h)
        return qkv.permute(2, 0, 3, 1, 4)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, h, T, D/h) over k, v (B, h, S, D/h) -> (B, T, D)."""
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, T, D/h)
        B, h, T, d = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, h * d))  # (B, T, D)

    def forward(self, x: torch.Tensor, state_kv: tuple | None = None) -> torch.Tensor:
        """Self-attention of x (B, T, D); ``state_kv`` holds the keys and values of tokens that
        x also reads but does not update (the state tokens of the encoder layout)."""
        q, k, v = self.heads_of(x)
        if state_kv is not None:
            k, v = torch.cat([state_kv[0], k], dim=2), torch.cat([state_kv[1], v], dim=2)
        return self.attend(q, k, v)


class DiTBlock(nn.Module):
    """Pre-norm transformer block whose LayerNorms are shifted, scaled and gated by the
    condition (adaLN-Zero): the gates start at zero, so the block starts as the identity."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads, dropout)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        width = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, width),
            # Exact (erf) GELU, not DiT's tanh approximation: on CPU the tanh form costs four
            # times as much forward and twice as much backward (bench/training.py) and the
            # two differ by less than 1e-3.
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(width, hidden),
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, state_kv: tuple | None = None
    ) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(
            c
        ).chunk(6, dim=1)  # each (B, D)
        h = self.attn(modulate(self.norm1(x), shift_msa, scale_msa), state_kv)  # (B, T, D)
        x = x + gate_msa.unsqueeze(1) * h
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x  # (B, T, D)

    def encode(self, state: torch.Tensor, last: bool) -> tuple[torch.Tensor, tuple]:
        """The encoder layout's state tokens (B, S, D) through this block with the same
        weights, unmodulated (they do not depend on t) and attending only to each other.
        Returns them updated (unchanged after the last block, where nothing reads them) and
        the keys and values the action tokens read here."""
        q, k, v = self.attn.heads_of(self.norm1(state))  # each (B, h, S, D/h)
        if not last:
            state = state + self.attn.attend(q, k, v)
            state = state + self.mlp(self.norm2(state))
        return state, (k, v)


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # each (B, D)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, T, out)


class DiT(nn.Module):
    def __init__(self, config: ModelConfig, mission_words: int = 0):
        super().__init__()
        D = config.hidden
        self.config = config
        self.mission_words = mission_words
        self.state = StateTokenizer(D)
        if mission_words:
            self.mission = MissionTokenizer(D, mission_words)
            if config.film:  # the whole mission, word order kept, -> a scale and a shift
                self.film = nn.Linear(mission_words * D, 2 * D)
        if config.history:
            self.past = PastTokenizer(D, config.history)
        if config.map:
            self.known = MapTokenizer(D, config.map)
        self.action = nn.Embedding(VOCAB, D)
        self.action_position = nn.Parameter(torch.zeros(1, config.horizon, D))
        self.time = TimestepEmbedder(D)
        self.blocks = nn.ModuleList(
            DiTBlock(D, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        # SUBS: logits over the seven actions only, so the mask token can never be predicted.
        self.final = FinalLayer(D, NUM_ACTIONS)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        nn.init.normal_(self.action_position, std=0.02)
        for layer in (self.time.mlp[0], self.time.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: modulation and output layers start at zero (DiT section 3.2).
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)
        if hasattr(self, "film"):  # starts as no modulation at all, like adaLN-Zero
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(
        self,
        image: torch.Tensor,
        direction: torch.Tensor,
        actions: torch.Tensor,
        t: torch.Tensor,
        past: Past | None = None,
        mission: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """image (B, 7, 7, 3), direction (B,), actions (B, H) tokens incl. MASK, t (B,) in [0, 1],
        with memory the ``past`` steps, where the mission varies its words (B, W) -> logits
        (B, H, 7)."""
        return self.denoise(self.encode(image, direction, past, mission), actions, t)

    def encode(
        self,
        image: torch.Tensor,
        direction: torch.Tensor,
        past: Past | None = None,
        mission: torch.Tensor | None = None,
    ):
        """What the denoiser reads of the observation (and, with memory, of the ``past``
        steps, and of the mission's words); it does not depend on t or on the action tokens,
        so a sampler computes it once per plan, not once per denoising step. The state tokens
        (B, S, D), S = W + P + M + 49 (W mission words, P map patches, M remembered steps), or
        with the encoder layout each block's state keys and values."""
        words = self.mission(mission) if self.mission_words else None  # (B, W, D)
        film = self.film(words.flatten(1)) if hasattr(self, "film") else None  # (B, 2D)
        state = self.state(image, direction, film)  # (B, 49, D)
        m = self.config
        if m.remembers:
            if past is None:
                past = Past.empty(len(image), m.history, m.map, image.device)
            if m.history:
                remembered = self.past(past.image, past.direction, past.action)  # (B, M, D)
                state = torch.cat([remembered, state], dim=1)  # (B, M + 49, D)
            if m.map:
                state = torch.cat([self.known(past.map), state], dim=1)  # (B, P + M + 49, D)
        if self.mission_words:
            state = torch.cat([words, state], dim=1)  # (B, W + ..., D)
        if self.config.layout != "encoder":
            return state
        state_kv = []
        for i, block in enumerate(self.blocks):
            state, keys_values = block.encode(state, last=i == len(self.blocks) - 1)
            state_kv.append(keys_values)
        return state_kv

    def denoise(self, encoded, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``encode``'s output, actions (B, H), t (B,) -> logits (B, H, 7)."""
        x = self.action(actions) + self.action_position  # (B, H, D)
        c = self.time(t)  # (B, D)
        if self.config.conditioning == "pool":
            c = c + encoded.mean(dim=1)  # (B, D)
        elif self.config.layout == "joint":
            x = torch.cat([encoded, x], dim=1)  # (B, S + H, D)
        for i, block in enumerate(self.blocks):
            x = block(x, c, encoded[i] if self.config.layout == "encoder" else None)  # (B, T, D)
        x = x[:, -actions.shape[1] :]  # (B, H, D)
        return self.final(x, c)  # (B, H, 7)


def model_for(config: Config) -> DiT:
    """The backbone of ``config``'s policy: its model section, reading the mission where the
    task's varies."""
    return DiT(config.model, mission_words(config))
