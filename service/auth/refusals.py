"""Refusals of requests that carry no credential, counted in memory: one journal row per route and minute.

Journaling each of them would make every anonymous 401/403 a committed append
under the chain's head lock, so a flood of them would slow every gateway
check. Instead each process counts them per (kind, route) and minute, and
writes one `refused` row per (kind, route) with the count, the reason codes and
a sample of source addresses once the minute is over (a timer) and when the
services close. Counts of the minute in progress are lost if the process is
killed (SIGKILL, out of memory): the journal then lacks at most that
minute's anonymous refusals. Refusals that carry a credential are journaled
one by one (service/auth/guards.py).
"""

import collections
import dataclasses
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime

from service.journal import Event, JournalWriter

log = logging.getLogger(__name__)

SAMPLE = 10  # distinct source addresses kept per row


@dataclasses.dataclass
class _Count:
    total: int = 0
    codes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    texts: dict = dataclasses.field(default_factory=dict)
    sources: list = dataclasses.field(default_factory=list)


class RefusalTally:
    """Per-process counts of anonymous refusals, written to the journal a minute at a time."""

    def __init__(self, journal: JournalWriter, *, clock=time.time):
        self.journal = journal
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str, str], _Count] = {}
        self._timer: threading.Timer | None = None
        self._closed = False

    def count(self, *, kind: str, route: str, code: str, text: str, source: str | None) -> None:
        """Count one refusal of a request without credentials (no database access)."""
        with self._lock:
            entry = self._counts.setdefault((self._minute(), kind, route), _Count())
            entry.total += 1
            entry.codes[code] += 1
            entry.texts.setdefault(code, text)
            if source and source not in entry.sources and len(entry.sources) < SAMPLE:
                entry.sources.append(source)
            self._arm()

    def flush(self, *, everything: bool = False) -> int:
        """Write one row per (kind, route) of each minute that is over (of every minute with everything)."""
        with self._lock:
            current = self._minute()
            due = sorted(k for k in self._counts if everything or k[0] < current)
            taken = [(k, self._counts.pop(k)) for k in due]
        for key, entry in taken:
            self._write(key, entry)
        return len(taken)

    def close(self) -> None:
        """Stop the timer and write every count still held, the current minute's too."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.flush(everything=True)

    def _minute(self) -> int:
        return int(self.clock() // 60)

    def _arm(self) -> None:
        """Under the lock: wake up just after the current minute ends."""
        if self._timer is None and not self._closed:
            self._timer = threading.Timer(60 - self.clock() % 60 + 0.2, self._tick)
            self._timer.daemon = True
            self._timer.start()

    def _tick(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()
        with self._lock:
            if self._counts:
                self._arm()

    def _write(self, key: tuple[int, str, str], entry: _Count) -> None:
        minute, kind, route = key
        reasons = tuple({"code": code, "text": entry.texts[code], "count": n} for code, n in entry.codes.most_common())
        detail = {"what": "anonymous", "route": route, "count": entry.total, "sources": entry.sources,
                  "minute": datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%MZ"),
                  "process": f"{socket.gethostname()}:{os.getpid()}"}
        try:
            self.journal.record(Event(kind=kind, outcome="refused", actor="anonymous", reasons=reasons, detail=detail))
        except Exception as e:  # the database is down: say what is lost rather than fail a request or the timer
            log.error("anonymous refusals not journaled: %s", e, extra={"fields": {"refusals": detail}})
