"""reflex_tui: the Reflex Observer dashboard (`reflex-tui`), a Textual app over PubNub.

Plain-data modules (no Textual imports, checked by a test): `state` (the fleet), `ingest`
(bus events -> state), `script_sync`, `text`, `thresholds`; `controller` talks to the bus.
UI: `app` (+ `app.tcss`), `screens/`, `dialogs/`, `widgets/`, `commands`, `messages`.
"""
