"""Load generator subprocess: `python -m bench._loadgen '<json spec>'`.

Runs in a process of its own so publishers never share a GIL with the hub or with the
process that measures deliveries (on 2 cores a shared GIL would make the measuring side
wait for the publishing side and inflate every latency). Protocol on stdin/stdout: it
prints `{"ready": true}` once its connections are open, waits for a `go` line, runs, and
prints one JSON summary line before exiting.

Modes:

* `publish`: `connections` connections, each with its own keep-alive socket, publish
  `results` messages for `devices` simulated devices at `rate` messages/s in total for
  `duration` s, open-loop (a late connection catches up but never bursts beyond one
  interval). Every payload carries `_t` (send time, `time.monotonic()`, which is
  system-wide on Linux) and `_n` (sequence) so the receiver can measure latency.
* `join`: `agents` simulated agents do what `reflex-agent join` does on the wire, all at
  once: uuid metadata, membership, presence heartbeat, a `state` and a `results` message.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import aiohttp

from bench import _wire
from bench._payloads import results_payload, state_payload


def _say(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def _wait_go() -> None:
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(1)


def _session(limit: int = 1) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=30),
    )


class _Bodies:
    """Serialized `results` payloads per device, with the clock fields filled in per send.

    Serializing a 10-result message costs more than sending it; a template per device
    (values vary between devices, not between rounds) keeps the generator cheap.
    """

    _TS = b"1111111111.5"
    _STAMP = b'"_t":2222222222.5,"_n":333333333'

    def __init__(self, devices: list[str], tests: int) -> None:
        rng = random.Random(7)
        self.templates: dict[str, tuple[bytes, ...]] = {}
        for device in devices:
            payload = results_payload(device, 0, tests, rng, ts=1111111111.5)
            payload["seq"] = 444444444
            payload["_t"] = 2222222222.5
            payload["_n"] = 333333333
            text = _wire.dumps(payload)
            text = text.replace(self._STAMP, b"\x00STAMP\x00").replace(b"444444444", b"\x00SEQ\x00")
            self.templates[device] = tuple(text.split(b"\x00"))

    def body(self, device: str, seq: int, sent: float, number: int) -> bytes:
        parts = self.templates[device]
        ts = f"{time.time():.3f}".encode()
        out = []
        for part in parts:
            if part == b"STAMP":
                out.append(f'"_t":{sent!r},"_n":{number}'.encode())
            elif part == b"SEQ":
                out.append(str(seq).encode())
            else:
                out.append(part.replace(self._TS, ts))
        return b"".join(out)


async def _publish_mode(spec: dict[str, Any]) -> dict[str, Any]:
    url: str = spec["url"]
    connections: int = spec["connections"]
    devices: list[str] = spec["devices"]
    rate: float = spec["rate"]
    duration: float = spec["duration"]
    tests: int = spec.get("tests", 6)
    period = connections / rate  # each connection sends one message per period
    host, port = url.removeprefix("http://").rsplit(":", 1)
    publishers = [_wire.FastPublisher(host, int(port)) for _ in range(connections)]
    assigned: list[list[str]] = [devices[i::connections] for i in range(connections)]
    bodies = _Bodies(devices, tests)
    seqs = dict.fromkeys(devices, 0)
    counter = 0
    sent = 0
    errors = 0
    late = 0
    try:
        # Open every socket before `go`, so connection setup is not part of the run.
        await asyncio.gather(
            *(p.connect() for p, mine in zip(publishers, assigned, strict=True) if mine)
        )
        _say({"ready": True})
        await _wait_go()
        start = time.monotonic() + 0.05
        end = start + duration

        async def connection(index: int) -> None:
            nonlocal counter, sent, errors, late
            mine = assigned[index]
            if not mine:
                return
            publisher = publishers[index]
            due = start + period * index / connections
            turn = 0
            while due < end:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -period:
                    late += 1
                    due = time.monotonic()  # behind by a whole interval: skip, no burst
                device = mine[turn % len(mine)]
                turn += 1
                seqs[device] += 1
                counter += 1
                body = bodies.body(device, seqs[device], time.monotonic(), counter)
                try:
                    await publisher.publish(f"device.{device}", body, uuid=device)
                    sent += 1
                except Exception:
                    errors += 1
                due += period

        cpu_before = time.process_time()
        await asyncio.gather(*(connection(i) for i in range(connections)))
        elapsed = time.monotonic() - start
        return {
            "cpu_share": (time.process_time() - cpu_before) / elapsed if elapsed > 0 else 0.0,
            "sent": sent,
            "errors": errors,
            "late": late,
            "elapsed": elapsed,
            "rate": sent / elapsed if elapsed > 0 else 0.0,
            "start": start,
            "end": end,
        }
    finally:
        for publisher in publishers:
            publisher.close()


async def _join_mode(spec: dict[str, Any]) -> dict[str, Any]:
    url: str = spec["url"]
    agents: list[str] = spec["agents"]
    channel: str = spec["channel"]
    presence: list[str] = spec["presence_channels"]
    tests: int = spec.get("tests", 6)
    sessions = [_session() for _ in agents]
    rng = random.Random(11)
    try:
        await asyncio.gather(*(_wire.hub_ping(session, url) for session in sessions))
        _say({"ready": True})
        await _wait_go()
        start = time.monotonic()

        async def join(session: aiohttp.ClientSession, ident: str) -> float:
            await _wire.set_uuid_metadata(
                session, url, ident, name=f"{ident}.bench", custom={"ignore": "", "interval": 10}
            )
            await _wire.join_channel(session, url, channel, uuid=ident)
            await _wire.heartbeat(session, url, presence, uuid=ident, presence_timeout=120)
            body = _wire.dumps(state_payload(ident, tests))
            await _wire.publish(session, url, f"device.{ident}", body, uuid=ident)
            body = _wire.dumps(results_payload(ident, 1, tests, rng))
            await _wire.publish(session, url, f"device.{ident}", body, uuid=ident)
            return time.monotonic() - start

        done = await asyncio.gather(*(join(s, a) for s, a in zip(sessions, agents, strict=True)))
        return {"agents": len(agents), "start": start, "slowest": max(done), "fastest": min(done)}
    finally:
        await asyncio.gather(*(session.close() for session in sessions))


async def main(spec: dict[str, Any]) -> None:
    mode = spec["mode"]
    if mode == "publish":
        summary = await _publish_mode(spec)
    elif mode == "join":
        summary = await _join_mode(spec)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    _say(summary)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
