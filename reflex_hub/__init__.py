"""reflex-hub: a local server speaking the part of PubNub's REST protocol Reflex Observer uses.

It is a development, demo and test backend (no access control, one process);
fleets in production run on PubNub itself. Point the official SDK at it with
``PNConfiguration.origin = handle.origin`` and ``ssl = False``.
"""

from __future__ import annotations

from reflex_hub.server import HubHandle, HubStartError, default_data_dir, start_hub

__all__ = ["HubHandle", "HubStartError", "default_data_dir", "start_hub"]
