"""Shared fixtures: in-process reflex-hub instances and SDK clients pointed at them.

* ``hub``: a fresh in-memory hub on 127.0.0.1 with a free port, stopped after the test.
* ``hub_factory``: ``await hub_factory(data_dir=..., memory=..., port=..., pub_key=...,
  sub_key=...)`` starts hubs (default: on the test's own data dir, so a second
  call after ``await first.stop()`` is a restart); all are stopped at teardown.
* ``make_pubnub``: ``make_pubnub(hub, "user-id")`` builds a ``PubNubAsyncio``
  pointed at a hub (``origin=hub.origin``, ``ssl=False``); extra keyword
  arguments set ``PNConfiguration`` attributes. Clients are stopped at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from pubnub.pnconfiguration import PNConfiguration
from pubnub.pubnub_asyncio import PubNubAsyncio

from reflex_hub import HubHandle, start_hub

#: Keys test clients use unless told otherwise (any keys work on an open hub).
TEST_PUB_KEY = "pub-c-reflex-test"
TEST_SUB_KEY = "sub-c-reflex-test"


class HubFactory(Protocol):
    def __call__(
        self,
        *,
        data_dir: Path | None = None,
        memory: bool = False,
        port: int = 0,
        pub_key: str | None = None,
        sub_key: str | None = None,
    ) -> Awaitable[HubHandle]: ...


PubNubFactory = Callable[..., PubNubAsyncio]


@pytest.fixture
async def hub() -> AsyncIterator[HubHandle]:
    handle = await start_hub("127.0.0.1", 0, memory=True)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    started: list[HubHandle] = []

    async def start(
        *,
        data_dir: Path | None = None,
        memory: bool = False,
        port: int = 0,
        pub_key: str | None = None,
        sub_key: str | None = None,
    ) -> HubHandle:
        if not memory and data_dir is None:
            data_dir = tmp_path / "hub-data"
        handle = await start_hub(
            "127.0.0.1",
            port,
            data_dir=None if memory else data_dir,
            memory=memory,
            pub_key=pub_key,
            sub_key=sub_key,
        )
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in reversed(started):
            await handle.stop()


def pubnub_config(hub: HubHandle, user_id: str, **settings: Any) -> PNConfiguration:
    """A configuration for the SDK against `hub`; `settings` override attributes.

    ``presence_timeout=N`` goes through ``set_presence_timeout`` (it is a
    method, not an attribute), which also sets the heartbeat interval.
    """
    config = PNConfiguration()
    presence_timeout = settings.pop("presence_timeout", None)
    if presence_timeout is not None:
        config.set_presence_timeout(presence_timeout)
    config.publish_key = TEST_PUB_KEY
    config.subscribe_key = TEST_SUB_KEY
    config.user_id = user_id
    config.origin = hub.origin
    config.ssl = False
    for name, value in settings.items():
        setattr(config, name, value)
    return config


@pytest.fixture
async def make_pubnub() -> AsyncIterator[PubNubFactory]:
    clients: list[PubNubAsyncio] = []

    def make(hub: HubHandle, user_id: str, **settings: Any) -> PubNubAsyncio:
        with warnings.catch_warnings():
            # Locking the config would silence this, but a locked config breaks
            # the SDK's lazy crypto setup (history() then fails), so the SDK's
            # default mutable config stays and only its notice is muted.
            warnings.filterwarnings("ignore", "Mutable config", DeprecationWarning)
            client = PubNubAsyncio(pubnub_config(hub, user_id, **settings))
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            # Cancel the held subscribe request before stopping: stop() alone
            # only disables the event engine and leaves the long-poll open.
            with contextlib.suppress(Exception):
                client.unsubscribe_all()
            with contextlib.suppress(Exception):
                await client.stop()
            # The event-engine manager creates a spare event loop it never uses or closes.
            spare = getattr(client._subscription_manager, "loop", None)
            if isinstance(spare, asyncio.AbstractEventLoop) and not spare.is_running():
                spare.close()


# --- Property-based tests (issue 6) ----------------------------------------------------------
# Property tests carry the `property` marker and run a modest number of examples by default
# (see `tests/agent/test_agent_property.py`, which sizes itself from the active profile).
# The full count, for CI: `HYPOTHESIS_PROFILE=ci-full pytest -m property` (or pass
# `--hypothesis-profile=ci-full`): 10,000 examples per property test.
import os as _os  # noqa: E402

from hypothesis import HealthCheck as _HealthCheck  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

FULL_PROPERTY_EXAMPLES = 10_000
_hypothesis_settings.register_profile(
    "ci-full",
    max_examples=FULL_PROPERTY_EXAMPLES,
    deadline=None,
    suppress_health_check=[_HealthCheck.too_slow, _HealthCheck.data_too_large],
)
if _os.environ.get("HYPOTHESIS_PROFILE"):
    _hypothesis_settings.load_profile(_os.environ["HYPOTHESIS_PROFILE"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "property: hypothesis property test; HYPOTHESIS_PROFILE=ci-full runs 10,000 examples",
    )


#: Test files that run longest, started first, longest first: the suite runs on two xdist
#: workers, one file per worker at a time (`--dist loadfile --no-loadscope-reorder`, see
#: pyproject), so a long file that started last would be the whole tail of the run.
LONGEST_FIRST = (
    "tests/reliability/test_soak.py",  # the 2-minute soak
    "tests/e2e/test_journeys.py",
    "tests/reliability/test_agent_death.py",
    "tests/reliability/test_dashboard_before_hub.py",
    "tests/reliability/test_hub_restart.py",
    "tests/reliability/test_bad_checks.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        for index, name in enumerate(LONGEST_FIRST):
            if path.endswith(name):
                return index
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its order
