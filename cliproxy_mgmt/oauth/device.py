"""What the device-code logins (RFC 8628) share: the pace the provider asks for, and how long
the code stays valid. Each provider keeps its own reading of the token answers."""

from __future__ import annotations

import time
from dataclasses import dataclass


def positive(value) -> bool:
    """A JSON number above zero (`true` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@dataclass
class DevicePace:
    """Seconds between token polls (a `slow_down` answer may raise it), and the monotonic
    time after which the device code is no longer worth asking about."""

    interval: float
    deadline: float

    @classmethod
    def of(cls, device: dict, *, default_interval: float, max_wait: float) -> "DevicePace":
        """From the device-code answer: its `interval` (else `default_interval`) and its
        `expires_in`, at most `max_wait` (else `max_wait`)."""
        interval, expires = device.get("interval"), device.get("expires_in")
        return cls(interval=float(interval) if positive(interval) else default_interval,
                   deadline=time.monotonic() + (min(expires, max_wait) if positive(expires) else max_wait))

    def wait(self, flow, expired: Exception) -> None:
        """Sleep one interval before the next poll (`flow.sleep`: a cancelled login ends it);
        raise `expired` instead when the code would expire first."""
        if time.monotonic() + self.interval > self.deadline:
            raise expired
        flow.sleep(self.interval)
