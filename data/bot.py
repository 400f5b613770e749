"""minigrid's own expert for missions in words: ``minigrid.utils.baby_ai_bot.BabyAIBot``, as
minigrid ships it, for BabyAI's levels, and through one adapter for MiniGrid's tasks whose
mission is an instruction it understands (pick up, open, go to, put next to).

The bot reads the environment's instruction (``env.unwrapped.instrs``: BabyAI levels have one;
the adapter builds one for a MiniGrid task from the task's own state), keeps its own mask of
the cells the agent has seen and explores the rest: it acts on what the agent could know, so
a policy that sees one view at a time can imitate it. It suggests one action at a time
(``replan(action_taken)`` after every step, whoever chose the action, as DAgger needs).

Its plan from a state, the actions to imitate there, is what it would do from there on: a copy
of the environment and of the bot played forward. The bot is deterministic, so when the action
taken is the plan's first, the rest of the plan is the plan from the next state, and only a
step off the plan (noise, or the policy's own choice) needs a new look ahead.

The bot fails on a few tasks (it raises, or replans forever): such an episode has no plan, and
demonstrations count and drop it (``data/demos.py``). Where it fails too often the task is not
supported (``data/envs.py``, docs/environments.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from minigrid.envs.babyai.core.verifier import (
    BeforeInstr,
    GoToInstr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)
from minigrid.utils.baby_ai_bot import BabyAIBot, DisappearedBoxError

# How far ahead the bot's plan from a state is played out for the demonstrations: the longest
# plan a policy predicts in any search space (``model.horizon``, core/config.py checks it), so
# that one file serves every horizon. DAgger's labels look as far as the policy's own horizon.
# Each step off the plan costs a look ahead of this many of the bot's own steps.
LOOK_AHEAD = 16

# The instruction of each MiniGrid task the bot can follow, built from the task's own state
# after a reset (``u`` is the unwrapped environment).
INSTRUCTIONS: dict[str, Callable] = {
    "KeyCorridor": lambda u: PickupInstr(ObjDesc(u.obj.type, u.obj.color)),
    "Unlock": lambda u: OpenInstr(ObjDesc("door", u.door.color)),
    "UnlockPickup": lambda u: PickupInstr(ObjDesc(u.obj.type, u.obj.color)),
    "BlockedUnlockPickup": lambda u: PickupInstr(ObjDesc(u.obj.type, u.obj.color)),
    "ObstructedMaze": lambda u: PickupInstr(ObjDesc(u.obj.type, u.obj.color)),
    "Fetch": lambda u: PickupInstr(ObjDesc(u.targetType, u.targetColor)),
    # The bot says `done` once it faces the target, which is what these two reward.
    "GoToDoor": lambda u: GoToInstr(ObjDesc("door", u.target_color)),
    "GoToObject": lambda u: GoToInstr(ObjDesc(u.targetType, u.target_color)),
    "PutNear": lambda u: PutNextInstr(
        ObjDesc(u.move_type, u.moveColor), ObjDesc(u.target_type, u.target_color)
    ),
    "RedBlueDoors": lambda u: BeforeInstr(
        OpenInstr(ObjDesc("door", "red")), OpenInstr(ObjDesc("door", "blue"))
    ),
}
# Breadth-first searches the bot may run to choose one action. Where it replans forever
# (seen on a few BabyAI levels, e.g. GoToImpUnlock), this ends the episode; a normal step takes
# a handful.
MOST_SEARCHES = 500


class Stuck(Exception):
    """The bot cannot go on from here."""


class Bot(BabyAIBot):
    """BabyAIBot with a bound on the searches one action may take."""

    def replan(self, action_taken=None):
        self.searches = 0
        try:
            return super().replan(action_taken)
        except (AssertionError, DisappearedBoxError) as error:
            raise Stuck(f"the bot gave up: {type(error).__name__} {error}") from None

    def _breadth_first_search(self, *args, **kwargs):
        self.searches += 1
        if self.searches > MOST_SEARCHES:
            raise Stuck(f"the bot replanned {MOST_SEARCHES} times for one action")
        return super()._breadth_first_search(*args, **kwargs)


def instruct(env, family: str) -> None:
    """Give a MiniGrid task of ``family`` (an instruction family, see INSTRUCTIONS) the BabyAI
    instruction its mission says, as BabyAI's levels have one; call after each reset."""
    u = env.unwrapped
    if not hasattr(u, "room_from_pos"):
        # The instruction's checks ask in which room a cell lies, which only tasks built of
        # rooms know; MiniGrid's missions never describe objects by their room.
        u.room_from_pos = lambda i, j: None
    for i in range(u.grid.width):  # objects placed with grid.set do not know where they are
        for j in range(u.grid.height):
            cell = u.grid.get(i, j)
            if cell is not None and cell.type != "wall" and cell.cur_pos is None:
                cell.cur_pos = (i, j)
    u.instrs = INSTRUCTIONS[family](u)
    u.instrs.reset_verifier(u)


class Ahead:
    """A copy of the environment and of the bot played ahead of the real episode: the bot's
    plan from the real state, as far as it has been played out. Played on by one action at a
    time as the real episode follows the plan, so every label looks the same distance ahead."""

    def __init__(self, env, bot, first: int):
        # One copy: the bot's mission is the env. The bare env (its step ends the episode at
        # the step limit), which makes no views: the bot looks at the grid itself.
        self.env, self.bot = copy.deepcopy((env.unwrapped, bot))
        self.env.gen_obs = lambda: None
        self.plan = [first]
        self.ended = False  # the episode ends (or the bot gets stuck) after the plan's last
        self.stuck = False

    def extend(self, most: int) -> tuple[int, ...]:
        """The plan, played out to ``most`` actions unless the episode ends first."""
        try:
            while not self.ended and len(self.plan) < most:
                _, _, terminated, truncated, _ = self.env.step(self.plan[-1])
                self.ended = terminated or truncated
                if not self.ended:
                    self.plan.append(int(self.bot.replan(self.plan[-1])))
        except Stuck:
            self.ended = self.stuck = True
        return tuple(self.plan)


class Following:
    """The bot as the teacher of one episode: its plan from each state the episode reaches
    (``label``, ``look_ahead`` actions of it), told of every action taken there (``moved``).
    ``bot``: the bot's class, or another expert that answers as it does (data/unboxing.py)."""

    def __init__(self, env, look_ahead: int = LOOK_AHEAD, bot: Callable = Bot):
        self.bot = bot(env.unwrapped)
        self.look_ahead = look_ahead
        self.suggested: int | None = None
        self.ahead: Ahead | None = None  # the plan from the current state, once played out
        self.stuck = False
        self.advise(None)

    def advise(self, action: int | None) -> None:
        """The bot's next action after ``action`` was taken (None: at the start)."""
        try:
            self.suggested = int(self.bot.replan(action))
        except Stuck:
            self.stuck = True

    def label(self, env, obs) -> tuple[int, ...] | None:
        """The bot's plan from the state ``env`` is in (None where it cannot go on)."""
        if self.stuck:
            return None
        if self.ahead is None:
            self.ahead = Ahead(env, self.bot, self.suggested)
        return self.ahead.extend(self.look_ahead)

    def moved(self, plan, action: int, env) -> None:
        self.advise(action)
        if self.ahead is not None and plan and action == plan[0] and len(plan) > 1:
            self.ahead.plan.pop(0)  # the rest is the plan from here: the bot is deterministic
        else:
            self.ahead = None


def episode_length(env, bot: Callable = Bot) -> int:
    """How many actions the bot (or another of its kind) takes to end the episode from here,
    on a copy (0 if it gets stuck)."""
    bot = bot(env.unwrapped)
    try:
        first = int(bot.replan())
    except Stuck:
        return 0
    ahead = Ahead(env, bot, first)
    plan = ahead.extend(most=10**6)
    return 0 if ahead.stuck else len(plan)
