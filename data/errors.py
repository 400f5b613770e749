"""The one exception type that means "the user asked for something we cannot do"."""


class BadInput(Exception):
    """A user's mistake; the command line prints the message as one line and exits with status 2.

    Every message says what is wrong and how to fix it, on a single line, so that it reads well
    in a terminal and in a log.
    """
