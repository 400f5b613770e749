"""Missions as tokens: one token per word of a closed vocabulary, the words of BabyAI's grammar
and of MiniGrid's own missions, padded to a fixed count per task.

A policy reads the mission only on tasks whose mission varies from episode to episode (the
instruction families, ``data/envs.py``); on the reach-the-goal families every episode has
the same mission, so it tells the policy nothing and is left out.
"""

from __future__ import annotations

import re

import numpy as np

from data.errors import BadInput

PAD = "<pad>"  # fills a mission out to the task's token count
# BabyAI's grammar (minigrid/envs/babyai/core/verifier.py: verbs, colours, object types,
# locations, connectives) and the words of MiniGrid's own missions (KeyCorridor, Unlock,
# Fetch, GoToDoor, GoToObject, PutNear, RedBlueDoors, ObstructedMaze, LockedRoom, Memory).
VOCABULARY = (
    PAD,
    *[
        "a",
        "after",
        "and",
        "at",
        "ball",
        "behind",
        "blue",
        "box",
        "door",
        "end",
        "fetch",
        "from",
        "front",
        "get",
        "go",
        "goal",
        "green",
        "grey",
    ],
    *[
        "hallway",
        "in",
        "key",
        "left",
        "matching",
        "must",
        "near",
        "next",
        "object",
        "of",
        "on",
        "open",
        "pick",
        "purple",
        "put",
        "red",
    ],
    *[
        "right",
        "room",
        "square",
        "the",
        "then",
        "to",
        "unlock",
        "up",
        "use",
        "yellow",
        "you",
        "your",
    ],
)
WORD_ID = {word: i for i, word in enumerate(VOCABULARY)}
WORD = re.compile(r"[a-z]+")


def mission_tokens(mission: str, count: int) -> np.ndarray:
    """``mission`` as ``count`` word ids (uint8), padded with PAD; BadInput for a word outside
    the vocabulary or a mission of more words."""
    words = WORD.findall(mission.lower())
    unknown = [word for word in words if word not in WORD_ID]
    if unknown:
        raise BadInput(
            f"mission {mission!r} has the word {unknown[0]!r}, which is not in the mission "
            "vocabulary (data/missions.py): this task's missions cannot be read; use a "
            "supported environment (`envs` lists them)"
        )
    if len(words) > count:
        raise BadInput(
            f"mission {mission!r} has {len(words)} words, more than the {count} this task's "
            "policy reads: use a supported environment (`envs` lists them)"
        )
    ids = [WORD_ID[word] for word in words] + [WORD_ID[PAD]] * (count - len(words))
    return np.array(ids, dtype=np.uint8)
