"""The local store of scanned events: one SQLite file per account, bounded in bytes, aggregated with SQL.

A scan of ``/1/events.json`` lands here page by page, so an aggregation's memory does not grow with the number of
records: grouping, exact distinct users and sorting run in SQLite, which spills to disk. Finished scans keep their
closed days (before today UTC) per *dataset* (an event and its filters), so a follow-up breakdown of the same data is
answered without exporting again. Profiles are stored once per user, not once per event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic_core import to_json

from tools.api import AggregateTable, Dim, Grouping, Metric

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans(
    id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, from_day INTEGER, to_day INTEGER,
    done INTEGER NOT NULL DEFAULT 0, records INTEGER NOT NULL DEFAULT 0, used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rows(
    scan INTEGER NOT NULL, day INTEGER, user TEXT, platform TEXT, props TEXT, session TEXT);
CREATE INDEX IF NOT EXISTS rows_scan_day ON rows(scan, day);
CREATE TABLE IF NOT EXISTS users(key TEXT PRIMARY KEY, profile TEXT);
CREATE TABLE IF NOT EXISTS coverage(
    dataset TEXT NOT NULL, day INTEGER NOT NULL, scan INTEGER NOT NULL, PRIMARY KEY(dataset, day));
CREATE INDEX IF NOT EXISTS coverage_scan ON coverage(scan);
"""
_ABANDONED_S = 4 * 3600.0  # CleverTap event cursors live at most 4 hours: an older unfinished scan cannot go on
_SEEN_MAX = 100_000  # users remembered per scan (their profile is written once): a bounded few MB
_counter = itertools.count()


def account_file(base_dir: str | os.PathLike[str], account: str) -> Path:
    """The store file of one account (the name is a hash: account ids and URLs stay out of file names)."""
    digest = hashlib.sha256(account.encode()).hexdigest()[:16]
    return Path(base_dir) / f"scans-{digest}.sqlite"


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """The platform's cache folder for this server (``$XDG_CACHE_HOME/clevertap-mcp``, else ``~/.cache/...``): a
    cache location is a platform convention, not a setting (``server.config.user_dir``)."""
    from server.config import APP_DIR, user_dir

    return user_dir("cache", env) / APP_DIR


def event_day(ts: Any) -> int | None:
    """The UTC day (YYYYMMDD) of an exported event's ``ts``: CleverTap's YYYYMMDDHHMMSS, epoch seconds or
    milliseconds, or an ISO string."""
    if isinstance(ts, str):
        text = ts.strip()
        if len(text) >= 10 and text[4] == "-" and text[7] == "-":
            digits = text[:4] + text[5:7] + text[8:10]
            return int(digits) if digits.isdigit() else None
        if not text.isdigit():
            return None
        ts = int(text)
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    n = int(ts)
    if 10_000_101_000_000 <= n <= 99_991_231_235_959:
        return n // 1_000_000
    if 10_000_101 <= n <= 99_991_231:
        return n
    if n >= 100_000_000_000:  # epoch milliseconds
        n //= 1000
    if 0 < n < 100_000_000_000:
        return int(dt.datetime.fromtimestamp(n, dt.timezone.utc).strftime("%Y%m%d"))
    return None


def _user(profile: Mapping[str, Any]) -> str | None:
    """One key per user: identity first (CleverTap's unique users are profiles, and a profile may have several
    devices), then email, CleverTap ID and the export's profile id."""
    for key in ("identity", "email", "objectId", "id"):
        value = profile.get(key)
        if value is not None and value != "":
            return f"{key}:{value}"
    return None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(name: str) -> str:
    # SQLite's quoted JSON labels cannot hold a double quote; the tool refuses such names before they get here.
    return _literal('$."' + name.replace('"', "") + '"')


def _expr(dim: Dim) -> str:
    if dim.source == "day":
        return "r.day"
    if dim.source == "week":
        date = "printf('%04d-%02d-%02d', r.day / 10000, r.day / 100 % 100, r.day % 100)"
        return f"CAST(strftime('%Y%m%d', {date}, 'weekday 0', '-6 days') AS INTEGER)"
    if dim.source == "month":
        return "r.day / 100"
    if dim.source == "platform":
        return "r.platform"
    column = {"event": "r.props", "profile": "u.profile", "session": "r.session"}[dim.source]
    return f"json_extract({column}, {_path(dim.name)})"


def _metric(m: Metric) -> str:
    if m.op == "count":
        return "COUNT(*)"
    if m.op == "users":
        return "COUNT(DISTINCT r.user)"
    assert m.target is not None
    fn = {"sum": "TOTAL", "avg": "AVG", "min": "MIN", "max": "MAX"}[m.op]
    return f"{fn}({_expr(m.target)})"


def _iso(source: str, value: Any) -> Any:
    """Periods as ISO dates: a day or the Monday of a week as YYYY-MM-DD, a month as YYYY-MM."""
    if not isinstance(value, int):
        return value
    if source in ("day", "week"):
        return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"
    if source == "month":
        return f"{value // 100:04d}-{value % 100:02d}"
    return value


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 6)
    return value


def _days(from_: int, to: int) -> list[int]:
    start = dt.date(from_ // 10000, from_ // 100 % 100, from_ % 100)
    end = dt.date(to // 10000, to // 100 % 100, to % 100)
    return [int((start + dt.timedelta(days=i)).strftime("%Y%m%d")) for i in range((end - start).days + 1)]


class SqliteScanStore:
    """The ``tools.api.ScanStore`` of one account. ``path=None``: a private temporary file, removed on close.

    ``max_bytes`` bounds what is kept (least recently used scans go first); 0 keeps nothing between calls.
    Several processes may share one file (SQLite locks it); this process serialises its own calls.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, *, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._temp: str | None = None
        self._path = None if path is None else str(path)
        self._db: sqlite3.Connection | None = None
        self._seen: dict[int, set[str]] = {}

    @property
    def _conn(self) -> sqlite3.Connection:
        """Opened on first use: a server that never aggregates creates no file."""
        if self._db is None:
            if self._path is None:
                fd, self._temp = tempfile.mkstemp(prefix="clevertap-mcp-scans-", suffix=".sqlite")
                os.close(fd)
                self._path = self._temp
            else:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30)
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "temp_store=FILE", "cache_size=-8000"):
                db.execute(f"PRAGMA {pragma}")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(*args)

        return await anyio.to_thread.run_sync(locked)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        if self._temp is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(self._temp + suffix)

    # -- writing -------------------------------------------------------------------------------------------------
    async def open_scan(self, dataset: str, from_: int, to: int) -> int:
        return await self._run(self._open, dataset, from_, to)

    def _open(self, dataset: str, from_: int, to: int) -> int:
        cur = self._conn.execute(
            "INSERT INTO scans(dataset, from_day, to_day, used) VALUES (?, ?, ?, ?)",
            (dataset, from_, to, self._clock()),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    async def has_scan(self, scan: int) -> bool:
        return await self._run(lambda: self._conn.execute("SELECT 1 FROM scans WHERE id = ?", (scan,)).fetchone())

    async def add(self, scan: int, records: Sequence[Mapping[str, Any]]) -> int:
        return await self._run(self._add, scan, records)

    @staticmethod
    def _row(record: Mapping[str, Any], profile: Mapping[str, Any], user: str | None) -> tuple[Any, ...]:
        props = record.get("event_props")
        session = record.get("session_props")
        return (
            event_day(record.get("ts")),
            user,
            profile.get("platform"),
            to_json(props if isinstance(props, Mapping) else {}, fallback=str).decode(),
            to_json(session, fallback=str).decode() if isinstance(session, Mapping) and session else None,
        )

    def _add(self, scan: int, records: Sequence[Mapping[str, Any]]) -> int:
        # A user's profile is the same on all their events of one export: it is written once per scan.
        seen = self._seen.setdefault(scan, set())
        if len(seen) > _SEEN_MAX:
            seen.clear()
        rows: list[tuple[Any, ...]] = []
        users: dict[str, str] = {}
        for record in records:
            if not isinstance(record, Mapping):
                continue
            raw = record.get("profile")
            profile: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            user = _user(profile)
            rows.append((scan, *self._row(record, profile, user)))
            if user is not None and user not in seen:
                data = profile.get("profileData")
                if isinstance(data, Mapping):
                    users[user] = to_json(data, fallback=str).decode()
                seen.add(user)
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT INTO rows(scan, day, user, platform, props, session) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._conn.executemany(
                "INSERT INTO users(key, profile) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET profile = excluded.profile",
                list(users.items()),
            )
            self._conn.execute(
                "UPDATE scans SET records = records + ?, used = ? WHERE id = ?", (len(rows), self._clock(), scan)
            )
        found = self._conn.execute("SELECT records FROM scans WHERE id = ?", (scan,)).fetchone()
        return int(found[0]) if found else 0

    async def finish(self, scan: int, keep_before: int | None) -> None:
        await self._run(self._finish, scan, keep_before)

    def _finish(self, scan: int, keep_before: int | None) -> None:
        self._seen.pop(scan, None)
        found = self._conn.execute("SELECT dataset, from_day, to_day FROM scans WHERE id = ?", (scan,)).fetchone()
        if found is None:
            return
        dataset, from_, to = found
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("UPDATE scans SET done = 1, used = ? WHERE id = ?", (self._clock(), scan))
            if keep_before is not None and self.max_bytes > 0:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO coverage(dataset, day, scan) VALUES (?, ?, ?)",
                    [(dataset, d, scan) for d in _days(from_, to) if d < keep_before],
                )
        self._collect(keep=scan)

    async def drop(self, scan: int) -> None:
        await self._run(self._drop, scan)

    def _drop(self, scan: int) -> None:
        self._seen.pop(scan, None)
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM coverage WHERE scan = ?", (scan,))
            self._conn.execute("DELETE FROM rows WHERE scan = ?", (scan,))
            self._conn.execute("DELETE FROM scans WHERE id = ?", (scan,))

    def size(self) -> int:
        """Bytes in use (pages not on the free list)."""
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _collect(self, keep: int) -> None:
        """Drop scans nothing refers to any more, abandoned unfinished ones, then the least recently used until the
        store fits in ``max_bytes``. Scan ``keep`` (the one just finished) stays."""
        now = self._clock()
        stale = [
            r[0]
            for r in self._conn.execute(
                "SELECT id FROM scans s WHERE id != ? AND ((done = 1 AND used < ? AND NOT EXISTS "
                "(SELECT 1 FROM coverage c WHERE c.scan = s.id)) OR (done = 0 AND used < ?))",
                (keep, now - 60, now - _ABANDONED_S),
            )
        ]
        for scan in stale:
            self._drop(scan)
        while self.size() > self.max_bytes:
            victim = self._conn.execute(
                "SELECT id FROM scans WHERE id != ? AND done = 1 ORDER BY used LIMIT 1", (keep,)
            ).fetchone()
            if victim is None:
                break
            self._drop(victim[0])
        if stale or self.size() > self.max_bytes:
            self._conn.execute(
                "DELETE FROM users WHERE key NOT IN (SELECT DISTINCT user FROM rows WHERE user IS NOT NULL)"
            )

    # -- reading -------------------------------------------------------------------------------------------------
    async def covered_days(self, dataset: str, days: Sequence[int]) -> set[int]:
        if not days:
            return set()
        lo, hi = min(days), max(days)
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT day FROM coverage WHERE dataset = ? AND day BETWEEN ? AND ?", (dataset, lo, hi)
            ).fetchall()
        )
        return {r[0] for r in rows} & set(days)

    async def aggregate(
        self, dataset: str, from_: int, to: int, scan: int | None, grouping: Grouping
    ) -> AggregateTable:
        return await self._run(self._aggregate, dataset, from_, to, scan, grouping)

    def _aggregate(self, dataset: str, from_: int, to: int, scan: int | None, g: Grouping) -> AggregateTable:
        n = next(_counter)
        plan, agg = f"temp.plan_{n}", f"temp.agg_{n}"
        covered = dict(
            self._conn.execute(
                "SELECT day, scan FROM coverage WHERE dataset = ? AND day BETWEEN ? AND ?", (dataset, from_, to)
            ).fetchall()
        )
        pairs = [(d, covered.get(d, scan)) for d in _days(from_, to)]
        self._conn.execute(f"CREATE TABLE {plan}(day INTEGER PRIMARY KEY, scan INTEGER)")
        try:
            self._conn.executemany(f"INSERT INTO {plan} VALUES (?, ?)", [p for p in pairs if p[1] is not None])
            used = {s for _, s in pairs if s is not None}
            self._conn.executemany("UPDATE scans SET used = ? WHERE id = ?", [(self._clock(), s) for s in used])
            needs_users = any(d.source == "profile" for _, d in g.group_by) or any(
                m.target is not None and m.target.source == "profile" for m in g.metrics
            )
            source = f"main.rows r JOIN {plan} p ON r.scan = p.scan AND r.day = p.day"
            if needs_users:
                source += " LEFT JOIN main.users u ON u.key = r.user"
            metrics = ", ".join(f"{_metric(m)} AS m{i}" for i, m in enumerate(g.metrics))
            total_row = self._conn.execute(f"SELECT {metrics} FROM {source}").fetchone()
            totals = {m.label: _number(v) for m, v in zip(g.metrics, total_row, strict=True)}
            if not g.group_by:
                return AggregateTable(groups=[], totals=totals, groups_total=0)
            keys = ", ".join(f"{_expr(d)} AS g{i}" for i, (_, d) in enumerate(g.group_by))
            group_cols = ", ".join(f"g{i}" for i in range(len(g.group_by)))
            self._conn.execute(f"CREATE TABLE {agg} AS SELECT {keys}, {metrics} FROM {source} GROUP BY {group_cols}")
            labels = [label for label, _ in g.group_by]
            names = [m.label for m in g.metrics]
            column = f"g{labels.index(g.order_by)}" if g.order_by in labels else f"m{names.index(g.order_by)}"
            direction = "DESC" if g.descending else "ASC"
            rows = self._conn.execute(
                f"SELECT * FROM {agg} ORDER BY {column} IS NULL, {column} {direction}, {group_cols} LIMIT ?",
                (g.limit,),
            ).fetchall()
            count = self._conn.execute(f"SELECT COUNT(*) FROM {agg}").fetchone()[0]
            groups = []
            for row in rows:
                item = {label: _iso(d.source, row[i]) for i, (label, d) in enumerate(g.group_by)}
                item.update({m.label: _number(row[len(labels) + i]) for i, m in enumerate(g.metrics)})
                groups.append(item)
            return AggregateTable(groups=groups, totals=totals, groups_total=int(count))
        finally:
            self._conn.execute(f"DROP TABLE IF EXISTS {plan}")
            self._conn.execute(f"DROP TABLE IF EXISTS {agg}")
