"""How long to wait before connecting again: exponential, capped, with jitter.

Jitter keeps many pollers (or many gateways) that lost the same server at the same moment
from coming back in one burst. Half of each wait is fixed and half random, so a poller
never hammers a server that just refused it.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 1.0, cap: float = 300.0) -> None:
        self.first = first
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempts)
        self.attempts += 1
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self.attempts = 0
