"""What labels a demonstration step: the experts that can, and how many of the expert's next
actions a step keeps. Names only, so that the configuration's schema reads them without
loading MiniGrid."""

from typing import Literal

# auto: the task's own expert; shortest: plans on the whole grid (reach-the-goal tasks);
# explorer: acts only on what the agent has seen. data/teachers.py gives each its teacher.
Expert = Literal["auto", "shortest", "explorer"]

PLAN_LENGTH = 64  # expert actions stored per step; plans longer than this are cut
