"""Reflex Observer benchmark suite (issue 7): `python -m bench [--quick]`.

Why it exists: the product promises to cost almost nothing on the hosts it watches and to
stay responsive with a large fleet. These benchmarks turn those promises into figures,
each against a goal, each with a baseline measured in the same run so a figure can be
read without knowing the machine. They are benchmarks, not tests: nothing here asserts.

Run from the repository root with the project installed (`pip install -e '.[test]'`):

    python -m bench --quick     # ~2.5 minutes on 2 cores
    python -m bench             # the full run, ~9-10 minutes; its table goes in
                                # docs/PERFORMANCE.md
    python -m bench --only hub_latency,fleet_join
    python -m bench --list

One module per benchmark (`hub_latency`, `agent_overhead`, `agent_rss`, `agent_cpu`,
`requests_per_device_hour`, `change_latency`, `tui_ingest`, `tui_rss`, `fleet_join`),
each with `NAME`, `UNIT`, `GOAL` and `async def run(ctx) -> Figure`, and a docstring
saying what exactly it measures. Shared pieces: `_harness` (figure format, statistics,
processes), `_wire` (raw PubNub REST calls for load generators), `_loadgen` (the load
generator subprocess), `_payloads`, `_agent_session` (the agent run three benchmarks
share), `_tui` (driving the real dashboard headless), `_run` (one group in a child).

Everything runs on loopback against `reflex-hub` subprocesses in memory mode, in scratch
directories the suite removes; every process a benchmark starts is stopped with it.
"""
