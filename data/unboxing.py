"""The expert where keys lie hidden in boxes: MiniGrid's ObstructedMaze variants with a hidden
key (1Dlh, 1Dlhb, 2Dlh, 2Dlhb, 1Q, 2Q, Full) and BabyAI's KeyInBox.

minigrid's BabyAIBot looks for a door's key on the floor only: where the key is in a box it
asserts that no such key exists, and it treats opening a box as a mistake it cannot recover
from (``DisappearedBoxError``). This expert is the bot, as minigrid ships it, with what it
lacks, in this order at every step:

1. toggling a box swaps in what the box holds (every box of these tasks holds a key), so it
   opens each box the agent has seen, the nearest first (unless it carries a ball the bot is
   moving out of a doorway);
2. otherwise the bot's action; where the bot cannot go on (no key on the floor yet, or its
   plan broken by a box it did not choose to open) a fresh bot, told of every cell the
   agent has seen;
3. where no bot can go on: the way to the nearest cell the agent has not seen, through the
   doors it can open; or taking up what stands ahead where that opens such a way (a key in
   a doorway); or putting down what it holds on a free cell (the bot plans to put a key down
   where it stands and asserts where the cell ahead is taken); or sending a bot to open the
   nearest closed door beside unseen cells that opens with no key or with one the agent
   has seen (the bot clears a ball that blocks it and fetches the key), once a door.
   ``done`` from a bot counts as not going on: it ends nothing in these tasks.

So it acts on what the agent has seen, as the bot does: the boxes it opens, the cells and
doors it walks to, are those a policy with the same view could know of.

It answers as the bot does (``replan(action_taken)`` -> the next action), so the bot's
teacher (data/bot.py ``Following``) plays it ahead for the plans to imitate, and DAgger tells
it of the policy's actions.
"""

from __future__ import annotations

import re

from minigrid.core.actions import Actions
from minigrid.utils.baby_ai_bot import GoNextToSubgoal, OpenSubgoal

from data.bot import Bot, Stuck
from data.expert import LEFT, PICKUP, TOGGLE, plan_to

DROP, DONE = int(Actions.drop), int(Actions.done)  # done: what a bot says once it is done

# Ids whose keys hide in boxes (the ObstructedMaze variants named with "h", the quarters and
# the full maze; BabyAI's KeyInBox).
HIDDEN_KEYS = re.compile(r"MiniGrid-ObstructedMaze-(\dDlhb?|\dQ|Full)-v\d|BabyAI-KeyInBox-v\d")


def hides_keys(env_id: str) -> bool:
    return HIDDEN_KEYS.fullmatch(env_id) is not None


class Unboxing:
    """The expert of one episode of ``u`` (the unwrapped env, with its instruction)."""

    def __init__(self, u):
        self.u = u
        self.bot = Bot(u)
        self.answered = False
        self.errand: Bot | None = None  # a bot sent to open a door, while it is under way
        self.errands: set[tuple[int, int]] = set()  # the doors a bot was sent to, once each
        self.putting_down = False  # turning to a free cell to put down what is carried
        self.boxes = self._boxes()

    def _ahead(self):
        return self.u.grid.get(*self.u.front_pos)

    def _boxes(self) -> list[tuple[int, int]]:
        grid = self.u.grid
        return [
            (i % grid.width, i // grid.width)
            for i, obj in enumerate(grid.grid)
            if obj is not None and obj.type == "box"
        ]

    def _fresh_bot(self) -> None:
        seen = self.bot.vis_mask
        self.bot = Bot(self.u)
        self.bot.vis_mask = seen.copy()
        self.answered = False  # a bot that never answered has no last step to be told of

    def _bot_says(self, action_taken: int | None) -> int | None:
        """The bot's next action, from a fresh bot where the bot cannot go on; None where
        neither can."""
        for fresh in (False, True):
            if fresh:
                self._fresh_bot()
            try:
                action = int(self.bot.replan(action_taken if self.answered else None))
            except Stuck:
                continue
            self.answered = True
            if action != DONE:  # `done` ends nothing here: its plan lost track of the task
                return action
        return None

    def replan(self, action_taken: int | None = None) -> int:
        boxes = self._boxes()
        put_down = self.putting_down and self.u.carrying is None
        if len(boxes) < len(self.boxes) or put_down:
            # A box was opened (the bot must not see it go), or what the bot held was put
            # down for it (its plan was to take it back): a fresh bot plans from here.
            self._fresh_bot()
            self.putting_down = False
        self.boxes = boxes
        suggested = self._bot_says(action_taken)  # also marks what the agent sees now
        if self.errand is not None:
            errand = self._errand_says(action_taken)
            if errand is not None:
                return errand
        seen_boxes = [b for b in boxes if self.bot.vis_mask[b]]
        carrying = self.u.carrying
        if self.putting_down:
            return DROP if self._ahead() is None else LEFT
        if carrying is None or carrying.type == "key":  # never put down what the bot moves
            to_box = plan_to(self.u, seen_boxes, doors=True)
            if to_box is not None:
                return (to_box[:-1] + [TOGGLE])[0]  # face the box, not walk into it
        if suggested is not None:
            return suggested
        frontier = self._frontier()
        to_unseen = plan_to(self.u, frontier, doors=True)
        if to_unseen:
            return to_unseen[0]
        ahead, front = self._ahead(), tuple(int(v) for v in self.u.front_pos)
        blocks = carrying is None and ahead is not None and ahead.can_pickup()
        if blocks and plan_to(self.u, seen_boxes + frontier, doors=True, cleared=[front]):
            return PICKUP  # what stands in the way is taken along (the bot puts it down)
        if carrying is not None:
            # The bot plans to put down what it holds where it stands, and asserts when the
            # cell ahead is taken (the object it came for, say): put it down first.
            self.putting_down = True
            return DROP if ahead is None else LEFT
        door = self._door_to_unseen()
        if door is not None:
            cell, door = door
            self.errand = self._sent_to_open(door)
            self.errands = self.errands | {cell}
            errand = self._errand_says(None)
            if errand is not None:
                return errand
        raise Stuck("no box to open, nothing left to see, and the bot cannot go on")

    def _sent_to_open(self, door) -> Bot:
        """A bot sent to open ``door``: the subgoals the bot makes of an instruction to open a
        door, aimed at this one (a description by colour could match another), told of every
        cell the agent has seen."""
        bot = Bot(self.u)
        bot.vis_mask = self.bot.vis_mask.copy()
        bot.stack = [OpenSubgoal(bot), GoNextToSubgoal(bot, door)]
        return bot

    def _errand_says(self, action_taken: int | None) -> int | None:
        """The errand bot's next action; None once its errand is done (or it cannot go on)."""
        try:
            action = int(self.errand.replan(action_taken))
        except Stuck:
            action = DONE
        if action == DONE:
            self.errand = None
            return None
        return action

    def _door_to_unseen(self):
        """The cell and the door of the nearest closed door the agent has seen beside a cell
        it has not, that opens without a key or with a key the agent has seen: a way on,
        which a ball may block (the bot knows how to clear it and to fetch the key); each
        door once."""
        seen, grid = self.bot.vis_mask, self.u.grid
        x0, y0 = self.u.agent_pos
        keys = {
            obj.color
            for i, obj in enumerate(grid.grid)
            if obj is not None and obj.type == "key" and seen[i % grid.width, i // grid.width]
        }
        if self.u.carrying is not None and self.u.carrying.type == "key":
            keys.add(self.u.carrying.color)
        doors = []
        for x in range(grid.width):
            for y in range(grid.height):
                door = grid.get(x, y)
                if door is None or door.type != "door" or door.is_open:
                    continue
                if door.is_locked and door.color not in keys or (x, y) in self.errands:
                    continue
                if seen[x, y] and not all(seen[c] for c in neighbours(x, y, grid)):
                    doors.append((abs(x - x0) + abs(y - y0), x, y, door))
        if not doors:
            return None
        _, x, y, door = min(doors, key=lambda d: d[:3])
        return (x, y), door

    def _frontier(self) -> list[tuple[int, int]]:
        """The cells not seen next to a seen cell one can stand on."""
        seen, grid = self.bot.vis_mask, self.u.grid
        frontier = []
        for x in range(grid.width):
            for y in range(grid.height):
                if seen[x, y]:
                    continue
                for nx, ny in neighbours(x, y, grid):
                    if seen[nx, ny]:
                        obj = grid.get(nx, ny)
                        if obj is None or obj.can_overlap():
                            frontier.append((x, y))
                            break
        return frontier


def neighbours(x: int, y: int, grid) -> list[tuple[int, int]]:
    return [
        (nx, ny)
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))
        if 0 <= nx < grid.width and 0 <= ny < grid.height
    ]
