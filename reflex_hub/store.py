"""SQLite persistence: message history, App Context objects, memberships, file index.

Everything here is synchronous and runs on the hub's event-loop thread: the
queries are small and indexed, and one thread means no locking. Published
messages are the only high-rate writes, so they are queued and written in
batches (:meth:`Store.flush`), one transaction per batch; reads of history
flush first so a reader always sees every acknowledged publish.

``path=None`` gives an in-memory database (``--memory``: nothing touches disk).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflex_hub.timetokens import TICKS_PER_SECOND

SCHEMA_VERSION = 1

#: History bound per channel (PubNub keeps far more; a local hub needs far less).
MAX_MESSAGES_PER_CHANNEL = 1000
#: Pruning lets a channel overshoot by this much so it runs once per batch, not per insert.
PRUNE_SLACK = 100
#: History older than this is dropped.
MAX_MESSAGE_AGE_SECONDS = 7 * 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    sub_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    tt INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    message TEXT NOT NULL,
    meta TEXT,
    publisher TEXT,
    custom_type TEXT,
    PRIMARY KEY (sub_key, channel, tt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (sub_key, tt);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    sub_key TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, sub_key, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memberships (
    sub_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    uuid TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (sub_key, channel, uuid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_by_uuid ON memberships (sub_key, uuid, channel);
CREATE TABLE IF NOT EXISTS files (
    sub_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (sub_key, channel, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_id ON files (sub_key, id);
"""


@dataclass(frozen=True)
class StoredMessage:
    """One history entry; `message` and `meta` are raw JSON text as published."""

    sub_key: str
    channel: str
    timetoken: int
    kind: int
    message: str
    meta: str | None = None
    publisher: str | None = None
    custom_type: str | None = None


@dataclass(frozen=True)
class FileRecord:
    sub_key: str
    channel: str
    id: str
    name: str
    size: int
    created: str


def _prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Store:
    """The hub's SQLite database."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        # isolation_level=None: explicit BEGIN/COMMIT so one batch is one transaction.
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path is not None:
            # WAL: readers never wait for the batch writer, and a commit is an
            # append instead of a journal rewrite; NORMAL sync is durable
            # across process crashes, which is what a local hub needs.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._set_meta_if_absent("schema_version", str(SCHEMA_VERSION))
        self._pending: list[StoredMessage] = []
        # Row counts per (sub_key, channel), loaded lazily, so the per-channel
        # bound costs a dictionary lookup per publish instead of a COUNT query.
        self._counts: dict[tuple[str, str], int] = {}

    # -- lifecycle ---------------------------------------------------------

    def close(self, last_timetoken: int | None = None) -> None:
        self.flush(last_timetoken)
        self._db.close()

    # -- meta --------------------------------------------------------------

    def _set_meta_if_absent(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def last_timetoken(self) -> int:
        """The highest timetoken this database has seen (0 for a fresh one)."""
        persisted = int(self.get_meta("last_timetoken") or 0)
        row = self._db.execute("SELECT MAX(tt) AS tt FROM messages").fetchone()
        return max(persisted, int(row["tt"] or 0))

    # -- messages ----------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def queue_message(self, message: StoredMessage) -> None:
        """Queue a message for the next batch write (see :meth:`flush`)."""
        self._pending.append(message)

    def flush(self, last_timetoken: int | None = None) -> None:
        """Write queued messages and the timetoken high-water mark in one transaction."""
        if not self._pending and last_timetoken is None:
            return
        batch, self._pending = self._pending, []
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO messages"
                " (sub_key, channel, tt, kind, message, meta, publisher, custom_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m.sub_key,
                        m.channel,
                        m.timetoken,
                        m.kind,
                        m.message,
                        m.meta,
                        m.publisher,
                        m.custom_type,
                    )
                    for m in batch
                ],
            )
            self._bound_channels(batch)
            if last_timetoken is not None:
                self.set_meta("last_timetoken", str(last_timetoken))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._counts.clear()
            raise

    def _bound_channels(self, batch: Sequence[StoredMessage]) -> None:
        touched: dict[tuple[str, str], int] = {}
        for message in batch:
            key = (message.sub_key, message.channel)
            touched[key] = touched.get(key, 0) + 1
        for key, added in touched.items():
            count = self._counts.get(key)
            if count is None:
                row = self._db.execute(
                    "SELECT COUNT(*) AS n FROM messages WHERE sub_key = ? AND channel = ?", key
                ).fetchone()
                count = int(row["n"])
            else:
                count += added
            if count > MAX_MESSAGES_PER_CHANNEL + PRUNE_SLACK:
                self._db.execute(
                    "DELETE FROM messages WHERE sub_key = ? AND channel = ? AND tt < ("
                    " SELECT tt FROM messages WHERE sub_key = ? AND channel = ?"
                    " ORDER BY tt DESC LIMIT 1 OFFSET ?)",
                    (*key, *key, MAX_MESSAGES_PER_CHANNEL - 1),
                )
                count = MAX_MESSAGES_PER_CHANNEL
            self._counts[key] = count

    def prune_older_than(self, now_timetoken: int) -> int:
        """Drop history older than the age bound; returns the number of rows removed."""
        self.flush()
        cutoff = now_timetoken - MAX_MESSAGE_AGE_SECONDS * TICKS_PER_SECOND
        cursor = self._db.execute("DELETE FROM messages WHERE tt < ?", (cutoff,))
        if cursor.rowcount:
            self._counts.clear()
        return int(cursor.rowcount)

    @staticmethod
    def _row_to_message(row: sqlite3.Row) -> StoredMessage:
        return StoredMessage(
            sub_key=row["sub_key"],
            channel=row["channel"],
            timetoken=int(row["tt"]),
            kind=int(row["kind"]),
            message=row["message"],
            meta=row["meta"],
            publisher=row["publisher"],
            custom_type=row["custom_type"],
        )

    def fetch_messages(
        self,
        sub_key: str,
        channel: str,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        oldest_first: bool,
    ) -> list[StoredMessage]:
        """History of one channel in ascending timetoken order.

        `start` is exclusive and `end` inclusive (PubNub's convention). With
        `oldest_first` the page is the oldest `limit` messages of the range,
        otherwise the newest `limit`.
        """
        self.flush()
        clauses = ["sub_key = ?", "channel = ?"]
        params: list[Any] = [sub_key, channel]
        if start is not None:
            clauses.append("tt < ?")
            params.append(start)
        if end is not None:
            clauses.append("tt >= ?")
            params.append(end)
        order = "ASC" if oldest_first else "DESC"
        rows = self._db.execute(
            f"SELECT * FROM messages WHERE {' AND '.join(clauses)} ORDER BY tt {order} LIMIT ?",
            (*params, limit),
        ).fetchall()
        messages = [self._row_to_message(row) for row in rows]
        if not oldest_first:
            messages.reverse()
        return messages

    def messages_after(
        self,
        sub_key: str,
        channels: Iterable[str],
        prefixes: Iterable[str],
        *,
        after: int,
        upto: int,
        limit: int,
    ) -> list[StoredMessage]:
        """Stored messages with ``after < tt <= upto`` on the given channels or prefixes.

        Used for subscribe catch-up when a cursor predates the in-memory buffer
        (after a restart or a long disconnect).
        """
        self.flush()
        alternatives: list[str] = []
        params: list[Any] = [sub_key, after, upto]
        channel_list = list(channels)
        if channel_list:
            alternatives.append(f"channel IN ({', '.join('?' for _ in channel_list)})")
            params.extend(channel_list)
        for prefix in prefixes:
            alternatives.append("(channel >= ? AND channel < ?)")
            params.extend((prefix, _prefix_upper_bound(prefix)))
        if not alternatives:
            return []
        rows = self._db.execute(
            "SELECT * FROM messages WHERE sub_key = ? AND tt > ? AND tt <= ?"
            f" AND ({' OR '.join(alternatives)}) ORDER BY tt ASC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [self._row_to_message(row) for row in rows]

    def delete_messages(self, sub_key: str, channel: str, low: int | None, high: int | None) -> int:
        """Delete history with ``low < tt <= high`` (either bound may be open)."""
        self.flush()
        clauses = ["sub_key = ?", "channel = ?"]
        params: list[Any] = [sub_key, channel]
        if low is not None:
            clauses.append("tt > ?")
            params.append(low)
        if high is not None:
            clauses.append("tt <= ?")
            params.append(high)
        cursor = self._db.execute(f"DELETE FROM messages WHERE {' AND '.join(clauses)}", params)
        self._counts.pop((sub_key, channel), None)
        return int(cursor.rowcount)

    # -- App Context objects -----------------------------------------------

    def get_object(self, kind: str, sub_key: str, object_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT data FROM objects WHERE kind = ? AND sub_key = ? AND id = ?",
            (kind, sub_key, object_id),
        ).fetchone()
        return None if row is None else dict(json.loads(row["data"]))

    def put_object(self, kind: str, sub_key: str, object_id: str, data: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects (kind, sub_key, id, data) VALUES (?, ?, ?, ?)",
            (kind, sub_key, object_id, json.dumps(data)),
        )

    def delete_object(self, kind: str, sub_key: str, object_id: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM objects WHERE kind = ? AND sub_key = ? AND id = ?",
            (kind, sub_key, object_id),
        )
        return cursor.rowcount > 0

    def list_objects(self, kind: str, sub_key: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT data FROM objects WHERE kind = ? AND sub_key = ? ORDER BY id",
            (kind, sub_key),
        ).fetchall()
        return [dict(json.loads(row["data"])) for row in rows]

    # -- memberships (one row per channel/uuid pair) ------------------------

    def put_membership(self, sub_key: str, channel: str, uuid: str, data: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO memberships (sub_key, channel, uuid, data) VALUES (?, ?, ?, ?)",
            (sub_key, channel, uuid, json.dumps(data)),
        )

    def delete_membership(self, sub_key: str, channel: str, uuid: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM memberships WHERE sub_key = ? AND channel = ? AND uuid = ?",
            (sub_key, channel, uuid),
        )
        return cursor.rowcount > 0

    def get_membership(self, sub_key: str, channel: str, uuid: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT data FROM memberships WHERE sub_key = ? AND channel = ? AND uuid = ?",
            (sub_key, channel, uuid),
        ).fetchone()
        return None if row is None else dict(json.loads(row["data"]))

    def members_of(self, sub_key: str, channel: str) -> list[tuple[str, dict[str, Any]]]:
        """(uuid, membership data) pairs of a channel, ordered by uuid."""
        rows = self._db.execute(
            "SELECT uuid, data FROM memberships WHERE sub_key = ? AND channel = ? ORDER BY uuid",
            (sub_key, channel),
        ).fetchall()
        return [(row["uuid"], dict(json.loads(row["data"]))) for row in rows]

    def memberships_of(self, sub_key: str, uuid: str) -> list[tuple[str, dict[str, Any]]]:
        """(channel, membership data) pairs of a uuid, ordered by channel."""
        rows = self._db.execute(
            "SELECT channel, data FROM memberships WHERE sub_key = ? AND uuid = ? ORDER BY channel",
            (sub_key, uuid),
        ).fetchall()
        return [(row["channel"], dict(json.loads(row["data"]))) for row in rows]

    def transaction(self) -> _Transaction:
        """Group several object writes into one commit."""
        return _Transaction(self._db)

    # -- files -------------------------------------------------------------

    def add_file(self, record: FileRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files (sub_key, channel, id, name, size, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.sub_key,
                record.channel,
                record.id,
                record.name,
                record.size,
                record.created,
            ),
        )

    @staticmethod
    def _row_to_file(row: sqlite3.Row) -> FileRecord:
        return FileRecord(
            sub_key=row["sub_key"],
            channel=row["channel"],
            id=row["id"],
            name=row["name"],
            size=int(row["size"]),
            created=row["created"],
        )

    def get_file(self, sub_key: str, channel: str, file_id: str) -> FileRecord | None:
        row = self._db.execute(
            "SELECT * FROM files WHERE sub_key = ? AND channel = ? AND id = ?",
            (sub_key, channel, file_id),
        ).fetchone()
        return None if row is None else self._row_to_file(row)

    def find_file(self, sub_key: str, file_id: str) -> FileRecord | None:
        row = self._db.execute(
            "SELECT * FROM files WHERE sub_key = ? AND id = ?", (sub_key, file_id)
        ).fetchone()
        return None if row is None else self._row_to_file(row)

    def list_files(
        self, sub_key: str, channel: str, *, after_id: str | None, limit: int
    ) -> list[FileRecord]:
        """Files of a channel ordered by id (as PubNub lists them), after a cursor."""
        rows = self._db.execute(
            "SELECT * FROM files WHERE sub_key = ? AND channel = ? AND id > ? ORDER BY id LIMIT ?",
            (sub_key, channel, after_id or "", limit),
        ).fetchall()
        return [self._row_to_file(row) for row in rows]

    def delete_file(self, sub_key: str, channel: str, file_id: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM files WHERE sub_key = ? AND channel = ? AND id = ?",
            (sub_key, channel, file_id),
        )
        return cursor.rowcount > 0


class _Transaction:
    """``with store.transaction():`` — BEGIN/COMMIT, ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
