"""When to send a request again, and after how long: decided here, without I/O, so
the sync and the async client share it and only sleep differently.

Bounded twice: at most `max_attempts` sends, and at most `max_wait` seconds of
waiting in all. A wait the server asks for (Retry-After) that would pass
`max_wait` is not waited: the error is raised at once, `retry_after` set.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

# Answers that say "not now" rather than "no": the request did not take effect.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures before the request left this machine: safe to repeat for any call.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (a number or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    max_wait: float = 30.0
    backoff: float = 0.5  # the first wait when the server names none; doubles each time

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: {self.max_attempts}; at least 1 (1 = no retries)")
        if not (self.max_wait >= 0 and math.isfinite(self.max_wait)):
            raise ValueError(f"max_wait: {self.max_wait}; a finite number of seconds >= 0")

    def start(self, idempotent: bool, answers: frozenset[int] = frozenset()) -> Attempts:
        return Attempts(self, idempotent, answers)


Outcome = httpx.Response | httpx.TransportError


@dataclass
class Attempts:
    """The attempts of one call: ask `wait_before_retry` after each send."""

    policy: RetryPolicy
    idempotent: bool
    answers: frozenset[int] = frozenset()  # statuses that are the call's answer
    sent: int = field(default=1)
    waited: float = field(default=0.0)

    def wait_before_retry(self, outcome: Outcome) -> float | None:
        """Seconds to sleep before sending again, or None: the outcome is final."""
        if isinstance(outcome, httpx.Response):
            status = outcome.status_code
            if status not in RETRY_STATUSES or status in self.answers or not self.idempotent:
                return None
            wait = retry_after(outcome)
        elif isinstance(outcome, NOT_SENT) or self.idempotent:
            wait = None
        else:
            return None  # it may have taken effect: sending again could repeat it
        if wait is None:
            wait = self.policy.backoff * 2 ** (self.sent - 1)
        if self.sent >= self.policy.max_attempts or self.waited + wait > self.policy.max_wait:
            return None
        self.sent += 1
        self.waited += wait
        return wait
