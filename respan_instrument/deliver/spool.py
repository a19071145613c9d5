"""The durable spool: request logs kept on disk (SQLite, WAL) until their destination has accepted them.

Every log is written here by the pipeline's writer thread before it is posted, and deleted only
once its destination has accepted it, so a crash loses at most the logs still in the in-memory queue.

Several processes may share one spool directory (one file, `spool.sqlite3`). Each row carries a
lease (`owner`, `lease_until`): a process posts only rows it claimed inside a write transaction,
so two processes never deliver the same row at once. A lease ends when its process releases it
(clean shutdown, or a key Respan refused), when it expires (`LEASE` seconds after the last
claim), or at once when its owner is a process on this host that no longer exists.

Each row belongs to one account: the Respan API root (`base`) and the API key it was made
under. Applications of one OS user with different keys share the default directory, so a row
is delivered only with its own key: it carries `key_fp`, an HMAC-SHA256 of the key under a
random secret kept in the file (`meta`), never the key itself; without the file's secret the
fingerprint cannot test guesses of a key. A process claims only rows of its own base and key
and leaves the others for their owner (`respan-instrument spool flush` with that key delivers
them). Rows written by versions before fingerprints have `key_fp = ''`: their key is unknown, and
any key delivers them, as those versions did (said once on the logger by whoever does).

When the directory cannot be used, a per-user directory under the system temp dir is tried
(`fallback_dir()`); when that fails too, logs are kept in memory only and the handle says so
(`in_memory`, `place`): such logs are not safe, and are lost if the process ends first.

For `respan-instrument spool status|flush`:

    status(spool_dir=None, api_key=None) -> dict   # rows, bytes, ages, per destination and per key
    respan_instrument.deliver.drain.deliver_spool(base_url, api_key, spool_dir=None) -> dict
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._config import cache_home_env, spool_dir_env, user_name_env
from .._errors import logger

if TYPE_CHECKING:
    import sqlite3

_T = TypeVar("_T")

FILE_NAME = "spool.sqlite3"
LEASE = 120.0  # seconds a claim holds; far above the sender's 10 s HTTP timeout
BUSY_TIMEOUT = 5.0  # seconds to wait for another process's write transaction
MEMORY_FALLBACK_BYTES = 64 * 1024 * 1024
ROW_OVERHEAD = 80  # bytes a row costs beyond its body and base, for the size cap
FP_CHARS = 32  # hex digits of a key fingerprint kept on each row (128 bits)
SHORT_FP = 8  # hex digits shown by `spool status`
LEGACY_FP = ""  # rows from before fingerprints: made under an unknown key
# live bytes of the database file (pages in use); one parameter: the page size
_USED = "((SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())) * ?"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    base TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0,
    claim INTEGER NOT NULL DEFAULT 0,
    key_fp TEXT NOT NULL DEFAULT '',
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


# columns added after the first layout, with their declarations, for files already on disk
_COLUMNS_ADDED = (("claim", "INTEGER NOT NULL DEFAULT 0"), ("key_fp", "TEXT NOT NULL DEFAULT ''"))


def default_dir() -> str:
    """The per-user cache directory for the spool (XDG on Linux, Caches on macOS, LOCALAPPDATA)."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        root = cache_home_env(True) or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        root = os.path.join(home, "Library", "Caches")
    else:
        xdg = cache_home_env(False)
        root = xdg if os.path.isabs(xdg) else os.path.join(home, ".cache")
    return os.path.join(root, "respan-instrument", "spool")


def resolve_dir(spool_dir: str | None = None) -> str:
    """`spool_dir`, else `RESPAN_SPOOL_DIR`, else `default_dir()`."""
    return spool_dir or spool_dir_env() or default_dir()


def fallback_dir() -> str:
    """The spool directory used when the configured one cannot be: this user's, in the temp dir."""
    user = str(os.getuid()) if hasattr(os, "getuid") else user_name_env()
    return os.path.join(tempfile.gettempdir(), f"respan-instrument-{user}")


def _private_dir(path: str) -> None:
    """Create `path` (0700) or accept it only if it is a real directory of ours, private.

    The temp dir is shared with other users: one of them could have made the path first, as a
    symlink to somewhere they can read, or as a directory of theirs.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{path} is not a directory (a symlink or a file)")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise OSError(f"{path} belongs to another user")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)


def fingerprint(secret: bytes, api_key: str) -> str:
    """The fingerprint a row made under `api_key` carries in a spool whose secret is `secret`."""
    return hmac.new(secret, api_key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:FP_CHARS]


def _secret(db: sqlite3.Connection) -> bytes:
    """This spool file's fingerprint key, made on first use (the first process to ask wins)."""
    db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('fp_secret', randomblob(32))")
    return bytes(db.execute("SELECT value FROM meta WHERE name = 'fp_secret'").fetchone()[0])


def owner_token() -> str:
    """`host:pid:nonce`, naming one exporter of one process (a forked child gets a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _owner_alive(owner: str, host: str) -> bool:
    """False only when `owner` is certainly gone: a process on this host that no longer exists."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or sys.platform == "win32":  # os.kill(pid, 0) kills on Windows
        return True
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    if pid == os.getpid() or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a spool file written by an earlier version up to this schema (columns only grow)."""
    import sqlite3

    columns = {row[1] for row in db.execute("PRAGMA table_info(logs)").fetchall()}
    for name, decl in _COLUMNS_ADDED:
        if name not in columns:
            try:
                db.execute(f"ALTER TABLE logs ADD COLUMN {name} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise


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

    def __init__(self, spool_dir: str | None, max_bytes: int, owner: str, api_key: str | None = None) -> None:
        self.dir = resolve_dir(spool_dir)
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

        The exporter's writer and sender each hold one, so neither waits on the other's
        statements and WAL checkpoints (the spool's only fsyncs) stay off the writer. Open
        this one after its primary.
        """
        other = Spool(self.dir, self.max_bytes, self.owner, self._api_key)
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
            self._db = self._open_somewhere(primary is None)
            self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            if not checkpoints and not self.in_memory:
                self._db.execute("PRAGMA wal_autocheckpoint = 0")
            if self._api_key is not None:
                self.key_fp = fingerprint(_secret(self._db), self._api_key)

    def _open_somewhere(self, say: bool) -> sqlite3.Connection:
        """The configured directory, else the per-user fallback, else memory; `say` which."""
        try:
            return self._open_file(self.dir, made=False)
        except Exception as exc:  # noqa: BLE001 - unwritable dir, corrupt file, full disk ...
            first = f"{self.dir} ({exc})"
        fallback = fallback_dir()
        if fallback != self.dir:
            try:
                db = self._open_file(fallback, made=True)
            except Exception as exc:  # noqa: BLE001 - the temp dir may be unusable too
                first += f" nor {fallback} ({exc})"
            else:
                self.dir, self.path = fallback, os.path.join(fallback, FILE_NAME)
                if say:
                    logger.warning(
                        "respan_instrument: cannot use the spool directory %s; undelivered logs are "
                        "kept in the spool %s instead. Set RESPAN_SPOOL_DIR to a writable directory.",
                        first,
                        self.path,
                    )
                return db
        if say:
            logger.warning(
                "respan_instrument: cannot use the spool directory %s; undelivered logs are kept in "
                "memory only (at most %d MB) and are lost if the process ends before Respan accepts "
                "them. Set RESPAN_SPOOL_DIR to a writable directory.",
                first,
                MEMORY_FALLBACK_BYTES >> 20,
            )
        self.in_memory = True
        self.max_bytes = min(self.max_bytes, MEMORY_FALLBACK_BYTES)
        return self._connect(":memory:")

    def _open_file(self, directory: str, made: bool) -> sqlite3.Connection:
        """Open `directory`'s spool file; `made`: a directory we make private and check first."""
        import sqlite3

        if made:
            _private_dir(directory)
        else:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, FILE_NAME)
        # logs hold prompts and completions: the file is the user's alone (WAL/SHM files inherit it)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        try:
            return self._connect(path)
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc) and "malformed" not in str(exc):
                raise
            aside = f"{path}.corrupt-{int(time.time())}"
            logger.warning(
                "respan_instrument: the spool %s is damaged (%s); moved to %s", path, exc, aside
            )
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.replace(path + suffix, aside + suffix)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            return self._connect(path)

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        import sqlite3

        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            if path != ":memory:":
                # a new file only: lets compact() give the disk back after a long outage
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                db.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a commit is in the OS before it returns (survives SIGKILL); only
                # a power cut can lose the last commits, and never corrupts the file
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute(f"PRAGMA journal_size_limit = {8 << 20}")
            db.executescript(_SCHEMA)
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

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
                (self.owner, now + lease, token, base, self.key_fp, LEGACY_FP, self.owner, now, limit, max_bytes),
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
        """Forget rows Respan has accepted (or rejected for good)."""
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
                if owner in self._dead or not _owner_alive(owner, self._host):
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
                    (max(upto, startup_max), base, self.key_fp, LEGACY_FP, self.owner, startup_max, time.time()),
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


def status(spool_dir: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    """What the spool holds, without changing it (for `respan-instrument spool status`).

    Args:
        spool_dir: the spool directory; default `RESPAN_SPOOL_DIR`, else the per-user cache dir.
        api_key: a Respan API key; when given, `current_key` says which fingerprint is its.

    Returns:
        `path` (the SQLite file), `exists`, `rows`, `bytes` (the file with its WAL, on disk),
        `data_bytes` (the logs themselves), `oldest_age_s` / `newest_age_s` (None when empty),
        `leased` (rows a live process is delivering right now), `by_base`
        (`{respan_api_root: rows}`), `by_key` (`{fingerprint short form: rows}`, `""` for rows
        of unknown key written by earlier versions) and `current_key` (the short form of
        `api_key`'s fingerprint in this file, None without a key or a secret yet).
    """
    import sqlite3

    path = os.path.join(resolve_dir(spool_dir), FILE_NAME)
    out: dict[str, Any] = {
        "path": path,
        "exists": os.path.exists(path),
        "rows": 0,
        "bytes": 0,
        "data_bytes": 0,
        "oldest_age_s": None,
        "newest_age_s": None,
        "leased": 0,
        "by_base": {},
        "by_key": {},
        "current_key": None,
    }
    if not out["exists"]:
        return out
    out["bytes"] = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "logs" not in tables:
            return out
        now = time.time()
        rows, data, oldest, newest, leased = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created), MAX(created), "
            "COALESCE(SUM(lease_until >= ?), 0) FROM logs",
            (now,),
        ).fetchone()
        out.update(rows=int(rows), data_bytes=int(data), leased=int(leased))
        if rows:
            out["oldest_age_s"] = round(max(0.0, now - float(oldest)), 3)
            out["newest_age_s"] = round(max(0.0, now - float(newest)), 3)
        out["by_base"] = {
            base: int(n) for base, n in db.execute("SELECT base, COUNT(*) FROM logs GROUP BY base").fetchall()
        }
        columns = {row[1] for row in db.execute("PRAGMA table_info(logs)").fetchall()}
        if "key_fp" not in columns:  # a file no process of this version has opened yet
            out["by_key"] = {LEGACY_FP: int(rows)} if rows else {}
            return out
        by_key: dict[str, int] = {}
        for fp, n in db.execute("SELECT key_fp, COUNT(*) FROM logs GROUP BY key_fp").fetchall():
            short = str(fp)[:SHORT_FP]
            by_key[short] = by_key.get(short, 0) + int(n)
        out["by_key"] = by_key
        secret = db.execute("SELECT value FROM meta WHERE name = 'fp_secret'").fetchone() if "meta" in tables else None
        if api_key and secret is not None:
            out["current_key"] = fingerprint(bytes(secret[0]), api_key)[:SHORT_FP]
    finally:
        db.close()
    return out
