"""Lending the GIL: when one of our background threads needs it, a busy caller hands it over."""

from __future__ import annotations

import threading
import time

LEND_SECONDS = 0.0002  # a caller's pause that hands the GIL to a waiting background thread
LEND_GAP = 0.0005  # least time between two such pauses for the writer ...
SENDER_GAP = 0.005  # ... and for the sender, which mostly waits on the network and is never urgent
LEND_GAP_MAX = 0.05  # ... doubled up to this while the thread makes no progress (slow disk or network)
LEND_PATIENCE = 8  # pauses without progress before the gap starts doubling (a post takes several)


class _Turn:
    """When one of our background threads needs the GIL, so that a busy caller hands it over.

    CPython 3.11's GIL starves a thread that waits for it while another keeps releasing and
    re-taking it within the 5 ms switch interval: every release wakes the waiter, every wake
    resets its timer, and the releasing thread wins the race back. The openai SDK releases it
    on every request (os.urandom), so in a tight loop of calls our threads went without the
    GIL for 10 s and more (measured). Worse, all that time every release by the caller pays
    for waking the waiter (a futex and, on a VM, an inter-processor interrupt), a cost a
    tight loop of calls shows plainly. So each thread says when it will want the GIL (`wanted`, a monotonic time:
    0 while awake, its timer while asleep, never once gone), and a caller that sees the time
    has come pauses `LEND_SECONDS` in `submit()`. The caller owns `next_pause`: pauses for one
    thread are at least `gap` apart, and after `LEND_PATIENCE` pauses without progress
    (`moves`) the gap doubles, so a thread stuck on a slow disk or network costs callers at
    most 0.2 ms every 50 ms. The sender's gap starts at `SENDER_GAP`: it spends most of its
    waking time waiting for the destination's answer with the GIL released, when a pause
    helps nobody (in a tight loop of chat calls its pauses were two thirds of all, some 10 per
    post), and a log that is already in the spool loses nothing by being posted a few ms
    later. Each side writes only its own fields, so neither can undo the other's. Callers
    running an asyncio event loop never pause (that would block the loop).
    """

    __slots__ = ("event", "wanted", "next_pause", "base", "gap", "moves", "seen", "stale")

    def __init__(self, event: threading.Event, gap: float = LEND_GAP) -> None:
        self.event = event  # what the thread waits on
        self.wanted = 0.0  # the thread's: from when it wants the GIL
        self.next_pause = 0.0  # the callers': no pause for it before this
        self.base = gap  # the gap while the thread makes progress
        self.gap = gap
        self.moves = 0
        self.seen = 0
        self.stale = 0  # pauses since the last progress

    def needs(self, now: float) -> bool:
        return now >= self.wanted and now >= self.next_pause

    def wake(self) -> None:
        """Anyone: wake the thread now, and have callers let it have the GIL."""
        if self.wanted != _NEVER:
            self.wanted = 0.0
        self.event.set()

    def awake(self) -> None:
        """The thread, whenever it got the GIL back: progress, and keep it coming."""
        self.wanted = 0.0
        self.moves += 1

    def sleeping(self, seconds: float) -> None:
        """The thread, before a timed wait: no pause is needed until it ends."""
        self.wanted = time.monotonic() + seconds
        self.moves += 1

    def gone(self) -> None:
        """The thread, as it exits: no caller may pause for it again."""
        self.wanted = _NEVER

    def lent(self, now: float) -> None:
        """The caller that paused for this thread."""
        if self.moves != self.seen:
            self.seen = self.moves
            self.stale = 0
            self.gap = self.base
        else:
            self.stale += 1
            if self.stale > LEND_PATIENCE:
                self.gap = min(self.gap * 2, LEND_GAP_MAX)
        self.next_pause = now + self.gap


_NEVER = float("inf")


__all__ = ["LEND_GAP", "LEND_GAP_MAX", "LEND_PATIENCE", "LEND_SECONDS", "SENDER_GAP", "_Turn"]
