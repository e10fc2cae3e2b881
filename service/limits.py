"""Rate limits on the doors anyone may knock on: a token bucket per (endpoint, client address), in memory.

Per process, never in the database: an anonymous request must not cost a write (the hardening issue removed the
last one). Each bucket holds up to `burst` requests and refills at burst/seconds a second; the table keeps at
most `max_keys` buckets, dropping the least recently used first, so a flood from many addresses costs bounded
memory (a dropped bucket starts full again: the limit is a brake on one address, not a quota).
"""

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Rate:
    """`burst` requests per `seconds`, from one address to one endpoint; burst 0 is no limit."""

    burst: int
    seconds: float


class Limiter:
    """Token buckets keyed by (endpoint, address), thread safe, at most max_keys of them."""

    def __init__(self, *, max_keys: int = 10000, clock: Callable[[], float] = time.monotonic):
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def take(self, rate: Rate, endpoint: str, address: str) -> int:
        """0 if the request may go on (a token taken), else the whole seconds until one is back (Retry-After)."""
        if rate.burst <= 0:
            return 0
        per_second = rate.burst / rate.seconds
        key = (endpoint, address)
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - then) * per_second)
            wait = 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / per_second))
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)  # pop + set: now the most recent
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)
