"""Hub-test setup: make the SDK survive App Context and file events.

SDK 10.8.0's ``PNSubscriptionRegistryCallback`` forwards App Context and file
events to every subscription object by calling ``.channel``, ``.uuid``,
``.membership`` and ``.file_message`` on them, but ``PNEventEmitter`` (the
subscription base class) defines none of these. The AttributeError is raised
inside the event engine and silently ends the subscribe loop, so without
these relays no test could observe such an event through the real SDK. The
product's facade installs its own fix; these tests must not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pubnub.models.subscription import PNEventEmitter


def _relay(handler_name: str, matchable: bool) -> Callable[[Any, Any], None]:
    def relay(self: Any, event: Any) -> None:
        handler = getattr(self, handler_name, None)
        if handler is None:
            return
        # Object events carry no channel, so they cannot be matched per subscription.
        if matchable and not self.is_matching_listener(event):
            return
        handler(event)

    return relay


@pytest.fixture(autouse=True)
def sdk_event_relays(monkeypatch: pytest.MonkeyPatch) -> None:
    for method, handler, matchable in (
        ("channel", "on_channel_metadata", False),
        ("uuid", "on_user_metadata", False),
        ("membership", "on_membership", False),
        ("file_message", "on_file", True),
    ):
        if not hasattr(PNEventEmitter, method):
            monkeypatch.setattr(PNEventEmitter, method, _relay(handler, matchable), raising=False)
