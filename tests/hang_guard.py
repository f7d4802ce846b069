"""A guard for tests of work that once hung (a regex backtracking for minutes): fail instead of hanging the run."""

import signal
from contextlib import contextmanager


@contextmanager
def within(seconds: int):
    """Fail, rather than hang the run, when the block takes longer than `seconds` (generous: it should take none).
    Not a timing assertion: the work it guards took minutes or hours before its fix."""

    def give_up(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
