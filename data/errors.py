"""The one exception type that means "the user asked for something we cannot do", and how a
message names this tool's commands."""

import sys
from pathlib import Path


class BadInput(Exception):
    """A user's mistake; the command line prints the message as one line and exits with status 2.

    Every message says what is wrong and how to fix it, on a single line, so that it reads well
    in a terminal and in a log.
    """


def command() -> str:
    """How the user runs this tool, for the commands a message suggests: ``mdps`` (the
    installed command) or ``python run_search.py`` (from a checkout)."""
    return "mdps" if Path(sys.argv[0]).name == "mdps" else "python run_search.py"
