"""How the spool's file is opened in a directory (which directories: `_spool_dirs`, worked out
by the wiring), the SQLite file and its schema, key fingerprints, owners, and the read-only
`status()`. See `spool` for the model.

For `respan-instrument spool status|flush`:

    status(spool_dir, api_key=None) -> dict   # rows, bytes, ages, per destination and per key
    respan_instrument.deliver.drain.deliver_spool(base_url, api_key, spool_dir, ...) -> dict
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import stat
import sys
import time
from typing import TYPE_CHECKING, Any

from .._errors import logger

if TYPE_CHECKING:
    import sqlite3

FILE_NAME = "spool.sqlite3"
MEMORY_FALLBACK_BYTES = 64 * 1024 * 1024  # the in-memory spool's cap, when no directory is usable
BUSY_TIMEOUT = 5.0  # seconds to wait for another process's write transaction
PAGE_SIZE = 16384  # bytes a page of a new spool file (SQLite's default, 4096, costs a log ~1.7x the CPU)
FP_CHARS = 32  # hex digits of a key fingerprint kept on each row (128 bits)
SHORT_FP = 8  # hex digits shown by `spool status`
LEGACY_FP = ""  # rows from before fingerprints: made under an unknown key

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
COLUMNS_ADDED = (("claim", "INTEGER NOT NULL DEFAULT 0"), ("key_fp", "TEXT NOT NULL DEFAULT ''"))


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


def secret(db: sqlite3.Connection) -> bytes:
    """This spool file's fingerprint key, made on first use (the first process to ask wins)."""
    db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('fp_secret', randomblob(32))")
    return bytes(db.execute("SELECT value FROM meta WHERE name = 'fp_secret'").fetchone()[0])


def owner_token() -> str:
    """`host:pid:nonce`, naming one pipeline of one process (a forked child gets a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_alive(owner: str, host: str) -> bool:
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


def migrate(db: sqlite3.Connection) -> None:
    """Bring a spool file written by an earlier version up to this schema (columns only grow)."""
    import sqlite3

    columns = {row[1] for row in db.execute("PRAGMA table_info(logs)").fetchall()}
    for name, decl in COLUMNS_ADDED:
        if name not in columns:
            try:
                db.execute(f"ALTER TABLE logs ADD COLUMN {name} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise


def open_somewhere(
    spool_dir: str, fallback_dir: str | None, say: bool
) -> tuple[sqlite3.Connection, str | None]:
    """The spool file in `spool_dir`, else in `fallback_dir`, else an in-memory database (at
    most `MEMORY_FALLBACK_BYTES`), and the directory it is in (None: memory); `say` which."""
    try:
        return open_file(spool_dir, made=False), spool_dir
    except Exception as exc:  # noqa: BLE001 - unwritable dir, corrupt file, full disk ...
        first = f"{spool_dir} ({exc})"
    if fallback_dir is not None and fallback_dir != spool_dir:
        try:
            db = open_file(fallback_dir, made=True)
        except Exception as exc:  # noqa: BLE001 - the temp dir may be unusable too
            first += f" nor {fallback_dir} ({exc})"
        else:
            if say:
                logger.warning(
                    "respan_instrument: cannot use the spool directory %s; undelivered logs are "
                    "kept in the spool %s instead. Set RESPAN_SPOOL_DIR to a writable directory.",
                    first,
                    os.path.join(fallback_dir, FILE_NAME),
                )
            return db, fallback_dir
    if say:
        logger.warning(
            "respan_instrument: cannot use the spool directory %s; undelivered logs are kept in "
            "memory only (at most %d MB) and are lost if the process ends before Respan accepts "
            "them. Set RESPAN_SPOOL_DIR to a writable directory.",
            first,
            MEMORY_FALLBACK_BYTES >> 20,
        )
    return connect(":memory:"), None


def open_file(directory: str, made: bool) -> sqlite3.Connection:
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
        return connect(path)
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc) and "malformed" not in str(exc):
            raise
        aside = f"{path}.corrupt-{int(time.time())}"
        logger.warning("respan_instrument: the spool %s is damaged (%s); moved to %s", path, exc, aside)
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        return connect(path)


def connect(path: str) -> sqlite3.Connection:
    import sqlite3

    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if path != ":memory:":
            # a new file only (a file that has tables, or is in WAL mode, keeps its own):
            # pages of 16 KB hold ~19 chat logs, not ~4, and a 5 KB log without overflow pages:
            # inserting, deleting and checkpointing a log then costs ~4 µs of CPU, not ~6.5 (a
            # 5 KB log ~15 µs, not ~30), most of it SQLite writing pages into the WAL. 64 KB saves
            # little more, and a quiet process would write 64 KB for each log it spools
            # (benchmarks/tools/bench_spool_pages.py).
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            # a new file only: lets compact() give the disk back after a long outage
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit is in the OS before it returns (survives SIGKILL); only
            # a power cut can lose the last commits, and never corrupts the file
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(f"PRAGMA journal_size_limit = {8 << 20}")
        db.executescript(_SCHEMA)
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def status(spool_dir: str, api_key: str | None = None) -> dict[str, Any]:
    """What the spool holds, without changing it (for `respan-instrument spool status`).

    Args:
        spool_dir: the spool directory (`_spool_dirs.resolve_dir()`).
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

    path = os.path.join(spool_dir, FILE_NAME)
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
        secret = (
            db.execute("SELECT value FROM meta WHERE name = 'fp_secret'").fetchone()
            if "meta" in tables
            else None
        )
        if api_key and secret is not None:
            out["current_key"] = fingerprint(bytes(secret[0]), api_key)[:SHORT_FP]
    finally:
        db.close()
    return out


__all__ = [
    "BUSY_TIMEOUT",
    "FILE_NAME",
    "LEGACY_FP",
    "MEMORY_FALLBACK_BYTES",
    "connect",
    "fingerprint",
    "open_file",
    "open_somewhere",
    "owner_alive",
    "owner_token",
    "secret",
    "status",
]
