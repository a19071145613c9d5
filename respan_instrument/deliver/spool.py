"""The durable spool: encoded logs kept on disk (SQLite, WAL) until their destination accepted them.

Every log is written here by the pipeline's writer thread before it is posted, and deleted only
once its destination has accepted it, so a crash loses at most the logs still in the in-memory
queue. Opening the file (its directory, the fallback, memory), its schema and `status()` are in
`spool_place`.

Several processes may share one spool directory (one file, `spool.sqlite3`). Each row carries a
lease (`owner`, `lease_until`): a process posts only rows it claimed inside a write transaction,
so two processes never deliver the same row at once. A lease ends when its process releases it
(clean shutdown, or a key the destination refused), when it expires (`LEASE` seconds after the
last claim), or at once when its owner is a process on this host that no longer exists.

Each row belongs to one account: the destination's route (`base`, e.g. the Respan API root) and
the API key it was made under. Applications of one OS user with different keys share the default directory, so a row
is delivered only with its own key: it carries `key_fp`, an HMAC-SHA256 of the key under a
random secret kept in the file (`meta`), never the key itself; without the file's secret the
fingerprint cannot test guesses of a key. A process claims only rows of its own base and key
and leaves the others for their owner (`respan-instrument spool flush` with that key delivers
them). Rows written by versions before fingerprints have `key_fp = ''`: their key is unknown, and
any key delivers them, as those versions did (said once on the logger by whoever does).

When the directory cannot be used, the fallback directory the wiring hands over (a per-user one
under the system temp dir: `_spool_dirs.fallback_dir()`) is tried; when that fails too, logs
are kept in memory only and the handle says so (`in_memory`, `place`): such logs are not safe,
and are lost if the process ends first.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from .spool_place import (
    FILE_NAME,
    LEGACY_FP,
    MEMORY_FALLBACK_BYTES,
    fingerprint,
    open_somewhere,
    owner_alive,
    owner_token,
    secret,
    status,
)

if TYPE_CHECKING:
    import sqlite3

_T = TypeVar("_T")

LEASE = 120.0  # seconds a claim holds; far above the sender's 10 s HTTP timeout
ROW_OVERHEAD = 80  # bytes a row costs beyond its body and base, for the size cap
# live bytes of the database file (pages in use); one parameter: the page size
_USED = "((SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())) * ?"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: Sequence[_T], size: int = 500) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Spool:
    """One handle on the spool file for one API key: one connection behind a lock.

    Opened lazily by `open()` on a worker thread. `twin()` makes a second handle with its own
    connection for another thread. When the directory cannot be used, the per-user fallback
    directory is tried; when that fails too, logs are kept in an in-memory database instead
    (capped at 64 MB, shared by the twins). Either is reported once.

    The handle writes, claims and counts rows of its own key (`api_key`) and rows of unknown
    key; `api_key=None` writes rows of unknown key.
    """

    def __init__(
        self,
        spool_dir: str,
        max_bytes: int,
        owner: str,
        api_key: str | None = None,
        fallback_dir: str | None = None,
    ) -> None:
        self.dir = spool_dir
        self.fallback_dir = fallback_dir  # where to go when `spool_dir` cannot be used (None: memory)
        self.path = os.path.join(self.dir, FILE_NAME)
        self.max_bytes = max_bytes
        self.owner = owner
        self.lock = threading.Lock()  # this handle's connection
        self.in_memory = False
        self.key_fp = LEGACY_FP  # set by open() from the file's secret
        self._api_key = api_key
        self._host = owner.rsplit(":", 2)[0]
        self._db: sqlite3.Connection | None = None
        self._page_size = 4096
        self._dead: set[str] = set()
        self._primary: Spool | None = None
        self._shared = False

    def twin(self) -> Spool:
        """A second handle on the same spool, with its own connection, for another thread.

        The pipeline's writer and sender each hold one, so neither waits on the other's
        statements and WAL checkpoints (the spool's only fsyncs) stay off the writer. Open
        this one after its primary.
        """
        other = Spool(self.dir, self.max_bytes, self.owner, self._api_key, self.fallback_dir)
        other._primary = self
        return other

    @property
    def place(self) -> str:
        """Where undelivered logs are, for messages: never a file that is not there."""
        return "memory only (no usable spool directory)" if self.in_memory else f"the spool {self.path}"

    # ---- opening -------------------------------------------------------------------
    def open(self, checkpoints: bool = True) -> None:
        """Open (creating if needed) the spool file; else the fallback directory's, else memory.

        `checkpoints=False` leaves WAL checkpoints to another handle (see `checkpoint()`).
        """
        primary = self._primary
        if primary is not None:  # wherever the primary ended up
            self.dir, self.path, self.max_bytes = primary.dir, primary.path, primary.max_bytes
            if primary.in_memory:
                self.lock, self._db, self._shared = primary.lock, primary._db, True
                self.in_memory, self.key_fp = True, primary.key_fp
                return
        with self.lock:
            if self._db is not None:
                return
            self._db, where = open_somewhere(self.dir, self.fallback_dir, say=primary is None)
            if where is None:
                self.in_memory = True
                self.max_bytes = min(self.max_bytes, MEMORY_FALLBACK_BYTES)
            else:
                self.dir, self.path = where, os.path.join(where, FILE_NAME)
            self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            if not checkpoints and not self.in_memory:
                self._db.execute("PRAGMA wal_autocheckpoint = 0")
            if self._api_key is not None:
                self.key_fp = fingerprint(secret(self._db), self._api_key)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("spool not open")
        return self._db

    def close(self) -> None:
        with self.lock:
            db, self._db = self._db, None
        if db is not None and not self._shared:
            db.close()

    def compact(self) -> None:
        """Return free pages to the file system (after a backlog was delivered)."""
        if self.in_memory:
            return
        with self.lock:
            self._conn().executescript("PRAGMA incremental_vacuum;")  # runs every step to the end

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database file without waiting for anyone."""
        if self.in_memory:
            return
        with self.lock:
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    # ---- writing -------------------------------------------------------------------
    # Every write is one statement in its own (autocommit) transaction, covering a whole batch:
    # never a row at a time, never BEGIN ... COMMIT around several statements. The sqlite3
    # module releases the GIL around each step; while the application keeps the GIL busy, each
    # re-acquisition can wait a switch interval or more (the convoy effect: a 500-row
    # executemany() took ~0.25 s instead of ~1 ms). A transaction held across such waits kept
    # SQLite's write lock for seconds and stalled the other thread's writes behind it; one step
    # holds it only while SQLite itself works. A single UPDATE is atomic, so claims stay exclusive.

    def append(self, base: str, bodies: Sequence[bytes], lease: float = LEASE) -> tuple[int, int]:
        """Store logs of our key leased to us; returns (id of the last one, oldest rows dropped
        for the cap)."""
        now = time.time()
        with self.lock:
            db = self._conn()
            for part in _chunks(bodies):
                db.execute(
                    "INSERT INTO logs (base, created, size, owner, lease_until, key_fp, body) "
                    "SELECT ?, ?, length(column1), ?, ?, ?, column1 FROM (VALUES "
                    + ",".join(["(?)"] * len(part))
                    + ")",
                    (base, now, self.owner, now + lease, self.key_fp, *part),
                )
            last, used = db.execute(f"SELECT last_insert_rowid(), {_USED}", (self._page_size,)).fetchone()
            dropped = self._trim(db, int(used)) if used > self.max_bytes else 0
        return int(last), dropped

    def _trim(self, db: sqlite3.Connection, used: int) -> int:
        """Delete the oldest rows until the live pages fit the cap; returns how many."""
        dropped = 0
        while used > self.max_bytes:
            gone = db.execute(
                "DELETE FROM logs WHERE id <= COALESCE((SELECT id FROM (SELECT id, ROW_NUMBER() OVER w AS n, "
                f"SUM(size + length(base) + {ROW_OVERHEAD}) OVER w AS acc "
                "FROM (SELECT id, size, base FROM logs ORDER BY id LIMIT 10000) WINDOW w AS (ORDER BY id)) "
                "WHERE acc >= ? OR n = 10000 ORDER BY id LIMIT 1), (SELECT MAX(id) FROM logs))",
                (used - self.max_bytes,),
            ).rowcount
            if gone <= 0:
                break
            dropped += gone
            used = int(db.execute(f"SELECT {_USED}", (self._page_size,)).fetchone()[0])
        return dropped

    # ---- claiming and settling -----------------------------------------------------
    def claim(self, base: str, limit: int, max_bytes: int, lease: float = LEASE) -> list[tuple[int, bytes]]:
        """Lease the oldest deliverable rows for `base` and our key (ours, or free) to us; at
        least one if any."""
        now = time.time()
        token = int.from_bytes(os.urandom(7), "big") + 1
        with self.lock:
            db = self._conn()
            claimed = db.execute(
                "UPDATE logs SET owner = ?, lease_until = ?, claim = ? WHERE id IN (SELECT id FROM "
                "(SELECT id, SUM(size) OVER w AS acc, ROW_NUMBER() OVER w AS n FROM (SELECT id, size "
                "FROM logs WHERE base = ? AND key_fp IN (?, ?) AND (owner = ? OR lease_until < ?) "
                "ORDER BY id LIMIT ?) WINDOW w AS (ORDER BY id)) WHERE acc <= ? OR n = 1)",
                (
                    self.owner,
                    now + lease,
                    token,
                    base,
                    self.key_fp,
                    LEGACY_FP,
                    self.owner,
                    now,
                    limit,
                    max_bytes,
                ),
            ).rowcount
            if claimed <= 0:
                return []
            # one step for all of them: the bodies joined, then split by their lengths
            got_ids, lengths, joined = db.execute(
                "SELECT group_concat(id), group_concat(length(body)), CAST(group_concat(body, '') AS BLOB) "
                "FROM (SELECT id, body FROM logs WHERE claim = ? ORDER BY id LIMIT ?)",
                (token, claimed),
            ).fetchone()
        if not got_ids:
            return []
        rows: list[tuple[int, bytes]] = []
        offset = 0
        for row_id, length in zip(got_ids.split(","), lengths.split(","), strict=True):
            end = offset + int(length)
            rows.append((int(row_id), bytes(joined[offset:end])))
            offset = end
        return rows

    def renew(self, ids: Sequence[int], lease: float = LEASE) -> None:
        """Extend our lease on rows we hold (before a slow retry of the same rows)."""
        until = time.time() + lease
        with self.lock:
            db = self._conn()
            for part in _chunks(ids):
                db.execute(
                    f"UPDATE logs SET lease_until = ? WHERE owner = ? AND id IN ({_marks(len(part))})",
                    (until, self.owner, *part),
                )

    def delete(self, ids: Sequence[int]) -> None:
        """Forget rows the destination has accepted (or rejected for good)."""
        with self.lock:
            db = self._conn()
            for part in _chunks(ids):
                db.execute(f"DELETE FROM logs WHERE id IN ({_marks(len(part))})", tuple(part))

    def release(self) -> None:
        """End our lease on all our rows so any process may deliver them now."""
        with self.lock:
            self._conn().execute("UPDATE logs SET lease_until = 0 WHERE owner = ?", (self.owner,))

    def reap(self) -> int:
        """Free rows leased by processes of this host that no longer exist; returns how many."""
        now = time.time()
        with self.lock:
            db = self._conn()
            owners = [
                owner
                for (owner,) in db.execute(
                    "SELECT DISTINCT owner FROM logs WHERE lease_until >= ? AND owner != ?", (now, self.owner)
                ).fetchall()
            ]
            freed = 0
            for owner in owners:
                if owner in self._dead or not owner_alive(owner, self._host):
                    self._dead.add(owner)
                    freed += db.execute(
                        "UPDATE logs SET lease_until = 0 WHERE owner = ? AND lease_until >= ?", (owner, now)
                    ).rowcount
            return freed

    # ---- questions -------------------------------------------------------------------
    def max_id(self) -> int:
        with self.lock:
            row = self._conn().execute("SELECT MAX(id) FROM logs").fetchone()
        return int(row[0] or 0)

    def claimable(self, base: str, limit: int, key_fp: str | None = None) -> int:
        """How many rows for `base` we could claim now, counting at most `limit`; only those of
        fingerprint `key_fp` when given (else our key's and unknown key's)."""
        fps = (key_fp, key_fp) if key_fp is not None else (self.key_fp, LEGACY_FP)
        with self.lock:
            row = (
                self._conn()
                .execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM logs WHERE base = ? AND key_fp IN (?, ?) "
                    "AND (owner = ? OR lease_until < ?) LIMIT ?)",
                    (base, *fps, self.owner, time.time(), limit),
                )
                .fetchone()
            )
        return int(row[0])

    def known_pending(self, base: str, upto: int, startup_max: int) -> bool:
        """Is any log this process knows of still here: ours up to id `upto`, or one of our key
        (or of unknown key) that was here at start-up (id <= `startup_max`) and is not leased by
        another live process? Rows of other keys are not ours to wait for."""
        with self.lock:
            row = (
                self._conn()
                .execute(
                    "SELECT 1 FROM logs WHERE id <= ? AND base = ? AND key_fp IN (?, ?) AND "
                    "(owner = ? OR (id <= ? AND lease_until < ?)) LIMIT 1",
                    (
                        max(upto, startup_max),
                        base,
                        self.key_fp,
                        LEGACY_FP,
                        self.owner,
                        startup_max,
                        time.time(),
                    ),
                )
                .fetchone()
            )
        return row is not None

    def count(self, base: str | None = None) -> int:
        """Rows our key delivers (ours and of unknown key), for `base` or for any."""
        with self.lock:
            db = self._conn()
            if base is None:
                row = db.execute(
                    "SELECT COUNT(*) FROM logs WHERE key_fp IN (?, ?)", (self.key_fp, LEGACY_FP)
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT COUNT(*) FROM logs WHERE base = ? AND key_fp IN (?, ?)",
                    (base, self.key_fp, LEGACY_FP),
                ).fetchone()
        return int(row[0])

    def foreign(self) -> int:
        """Rows of other keys: never ours to send."""
        with self.lock:
            row = (
                self._conn()
                .execute("SELECT COUNT(*) FROM logs WHERE key_fp NOT IN (?, ?)", (self.key_fp, LEGACY_FP))
                .fetchone()
            )
        return int(row[0])


__all__ = ["LEASE", "LEGACY_FP", "Spool", "owner_token", "status"]
