"""The one exception type the PubNub facade (`reflex_core.bus`) raises.

Callers (agent, dashboard) must be able to log a failed PubNub call as one readable line and
decide whether retrying makes sense, without knowing the SDK's exception zoo
(`PubNubException`, `PubNubAsyncioException`, bare `AttributeError`s from its file helpers).
No pubnub import here, so callers can catch `BusError` without pulling in the SDK.
"""

from __future__ import annotations

__all__ = ["BusError", "DecryptionError"]


class BusError(Exception):
    """A PubNub operation failed.

    `str(err)` reads like ``publish on device.web1 failed: HTTP 400: Message Too Large`` so a log
    line needs nothing else. The parts stay available for code that branches on them.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        channel: str | None = None,
        uuid: str | None = None,
        status_code: int | None = None,
        category: str | None = None,
    ) -> None:
        self.operation = operation
        self.message = message
        self.channel = channel
        self.uuid = uuid
        self.status_code = status_code
        self.category = category
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.operation
        if self.channel:
            where = f"{where} on {self.channel}"
        elif self.uuid:
            where = f"{where} for {self.uuid}"
        status = f"HTTP {self.status_code}: " if self.status_code else ""
        return f"{where} failed: {status}{self.message}"

    @property
    def transient(self) -> bool:
        """True when retrying later may succeed: no HTTP answer, a timeout, 429 or a 5xx.

        A 4xx (bad key, message too large, forbidden) will fail the same way again, so the
        agent's offline buffer must not keep such a message forever.
        """
        if self.status_code is None:
            return True
        return self.status_code == 429 or self.status_code >= 500


class DecryptionError(BusError):
    """Content could not be decrypted with the configured cipher key (or is not encrypted).

    Kept distinct so callers can show the one actionable hint ("is cipher_key the same
    everywhere?") instead of a generic failure.
    """
