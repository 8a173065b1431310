"""SQLite storage of the sandbox: one connection guarded by a lock; every method is synchronous and thread-safe.

The app calls these methods from worker threads (``anyio.to_thread``), so the event loop never waits on SQLite.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import mmap
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config import SandboxConfig
from .query import Query, Sql, extract, json_path, km_between, top_expression
from .schema import INDEXES, TABLES
from .seed import ensure_seed, generate
from .validate import Checked, check, token_fits_platform

T = TypeVar("T")

TOKEN_PLATFORMS = {
    "fcm": "Android",
    "gcm": "Android",
    "apns": "iOS",
    "chrome": "Web",
    "wns": "Windows",
    "mpns": "Windows",
}
PLATFORM_FOR_DEVICE = {"android": "Android", "ios": "iOS", "windows": "Windows"}
NOW_SOURCES = ("direct", "others", "search", "social", "email", "unavailable")
NOW_BROWSERS = ("others", "firefox", "chrome", "ie", "mobileapp")
NOW_OS = ("others", "android", "ios", "windows", "mac", "linux")
NOW_DEVICES = ("desktop", "mobile", "tablet")
TOP_LEVEL_PROFILE_KEYS = ("Name", "Email", "Phone")


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


# One encoder for every write: json.dumps with options builds a new encoder per call, which bulk uploads feel.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def day_of(ts: int) -> int:
    return _day_number(ts // 86400)


@functools.lru_cache(maxsize=1024)
def _day_number(days: int) -> int:
    """The YYYYMMDD of the UTC day ``days`` after the epoch (uploads repeat the same few days)."""
    return int(time.strftime("%Y%m%d", time.gmtime(days * 86400)))


def ct_timestamp(ts: int) -> int:
    """Epoch seconds to CleverTap's ``yyyyMMddHHmmss`` integer (UTC)."""
    return int(time.strftime("%Y%m%d%H%M%S", time.gmtime(ts)))


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.create_function("ct_km", 4, km_between, deterministic=True)
        self.lock = threading.Lock()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        self.anchor = meta.get("anchor", "")
        self._sessions: dict[int, dict[str, Any]] = {
            sid: _loads(data) for sid, data in conn.execute("SELECT sid, data FROM sessions")
        }

    @classmethod
    def open(cls, config: SandboxConfig) -> Store:
        """Open the database the config names, or a private in-memory copy of the cached seed."""
        anchor = config.anchor or dt.datetime.now(dt.timezone.utc).date()
        if config.db_path:
            path = Path(config.db_path)
            if not path.exists() or path.stat().st_size == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
                os.close(fd)
                try:
                    generate(tmp, anchor, config.seed_profiles, config.seed_events)
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            conn.executescript(TABLES)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(profiles)")}
            for column in ("lat", "lon"):  # databases seeded before geo_radius existed
                if column not in columns:
                    conn.execute(f"ALTER TABLE profiles ADD COLUMN {column} REAL")
            conn.executescript(INDEXES)
        else:
            seed = ensure_seed(anchor, config.seed_profiles, config.seed_events, config.cache_dir)
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            if hasattr(conn, "deserialize"):  # Python 3.11+: one copy, straight from the mapped file
                # deserialize copies the bytes into SQLite's own memory, so the mapping can close at once; reading
                # the file into a bytes object first would copy (and fault in) the whole database twice.
                with open(seed, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    conn.deserialize(mapped)
            else:
                source = sqlite3.connect(f"{seed.as_uri()}?mode=ro", uri=True)
                try:
                    source.backup(conn)
                finally:
                    source.close()
        return cls(conn)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # ---- reads -------------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self.lock:
            counts = {
                table: self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("profiles", "devices", "events", "campaigns")
            }
            # One aggregate per SELECT: SQLite answers a lone MIN or MAX from the ts index, both together by a scan.
            first, last = self.conn.execute(
                "SELECT (SELECT MIN(ts) FROM events), (SELECT MAX(ts) FROM events)"
            ).fetchone()
        return {**counts, "first_event_ts": first, "last_event_ts": last, "anchor": self.anchor}

    def count_events(self, query: Query) -> int:
        sql = query.events_where()
        with self.lock:
            return int(
                self.conn.execute(f"SELECT COUNT(*) FROM events e WHERE {sql.where()}", sql.params).fetchone()[0]
            )

    def count_profiles(self, query: Query) -> int:
        sql = query.profiles_where()
        with self.lock:
            row = self.conn.execute(f"SELECT COUNT(*) FROM profiles p WHERE {sql.where()}", sql.params).fetchone()
            return int(row[0])

    def event_names(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.conn.execute("SELECT DISTINCT name FROM events")}

    def has_event(self, name: str) -> bool:
        with self.lock:
            return self.conn.execute("SELECT 1 FROM events WHERE name = ? LIMIT 1", (name,)).fetchone() is not None

    def event_page(
        self, query: Query, after: tuple[int, int] | None, limit: int, *, app: bool, profile: bool
    ) -> tuple[list[dict[str, Any]], tuple[int, int] | None, bool]:
        """One page of matching events in (day, id) order after the ``after`` key: (records, last key, more?)."""
        sql = query.events_where()
        if after is not None:
            sql.add("(e.day, e.id) > (?, ?)", *after)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT e.id, e.pid, e.did, e.ts, e.day, e.props, e.sid FROM events e WHERE {sql.where()} "
                "ORDER BY e.day, e.id LIMIT ?",
                [*sql.params, limit + 1],
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            profiles = self._profile_rows({r[1] for r in rows})
            devices = self._device_rows(d for r in rows if (d := r[2]) is not None)
        records = []
        for _eid, pid, did, ts, _day, props, sid in rows:
            p = profiles.get(pid)
            d = devices.get(did) if did is not None else None
            prof: dict[str, Any] = {
                "objectId": d["objectId"] if d else None,
                "identity": p["identity"] if p else None,
                "email": p["email"] if p else None,
                "platform": d.get("platform") if d else None,
            }
            if profile:
                prof["profileData"] = p["profileData"] if p else {}
            prof["id"] = pid
            if app and d:
                for key in ("os_version", "app_version", "make", "model"):
                    if key in d:
                        prof[key] = d[key]
            records.append(
                {
                    "profile": {k: v for k, v in prof.items() if v is not None},
                    "ts": ct_timestamp(ts),
                    "event_props": _loads(props),
                    "session_props": self._sessions.get(sid, {}),
                }
            )
        last = (rows[-1][4], rows[-1][0]) if rows else after
        return records, last, more

    def profile_pids(self, query: Query) -> list[int]:
        sql = query.profiles_where()
        with self.lock:
            return [
                r[0]
                for r in self.conn.execute(
                    f"SELECT p.pid FROM profiles p WHERE {sql.where()} ORDER BY p.pid", sql.params
                )
            ]

    def profile_records(
        self, pids: Sequence[int], *, events: bool = True, profile: bool = True
    ) -> list[dict[str, Any]]:
        with self.lock:
            return self._profile_records(pids, events=events, profile=profile)

    def find_profile(self, key: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            if key == "objectId":
                row = self.conn.execute("SELECT pid FROM devices WHERE object_id = ?", (value,)).fetchone()
            else:
                column = "email" if key == "email" else "identity"
                row = self.conn.execute(
                    f"SELECT pid FROM profiles WHERE {column} = ? ORDER BY pid LIMIT 1", (value,)
                ).fetchone()
            if row is None:
                return None
            found = self._profile_records([row[0]], events=True, profile=True)
            return found[0] if found else None

    def _profile_rows(self, pids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = sorted(set(pids))
        out: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            for pid, identity, email, name, phone, data in self.conn.execute(
                f"SELECT pid, identity, email, name, phone, data FROM profiles WHERE pid IN ({marks})", chunk
            ):
                pdata = _loads(data)
                custom = {k: v for k, v in pdata.items() if k not in TOP_LEVEL_PROFILE_KEYS}
                out[pid] = {"identity": identity, "email": email, "name": name, "phone": phone, "profileData": custom}
        return out

    def _device_rows(self, dids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = sorted(set(dids))
        out: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT * FROM devices WHERE did IN ({marks})", chunk):
                out[row[0]] = _device_dict(row)
        return out

    def _profile_records(self, pids: Sequence[int], *, events: bool, profile: bool) -> list[dict[str, Any]]:
        rows = self._profile_rows(pids)
        platforms: dict[int, list[dict[str, Any]]] = defaultdict(list)
        summaries: dict[int, dict[str, dict[str, int]]] = defaultdict(dict)
        for chunk in _chunks(list(rows), 900):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT * FROM devices WHERE pid IN ({marks}) ORDER BY did", chunk):
                info = _device_dict(row)
                platforms[row[2]].append(
                    {
                        k: info[k]
                        for k in ("platform", "os_version", "app_version", "make", "model", "browser", "push_token")
                        if k in info
                    }
                    | {"objectId": info["objectId"]}
                )
            if events:
                for pid, name, count, first, last in self.conn.execute(
                    f"SELECT pid, name, COUNT(*), MIN(ts), MAX(ts) FROM events WHERE pid IN ({marks}) "
                    "GROUP BY pid, name",
                    chunk,
                ):
                    summaries[pid][name] = {"count": count, "first_seen": first, "last_seen": last}
        records = []
        for pid in pids:
            p = rows.get(pid)
            if p is None:
                continue
            record: dict[str, Any] = {"identity": p["identity"], "email": p["email"], "name": p["name"]}
            if p["phone"]:
                record["phone"] = p["phone"]
            record = {k: v for k, v in record.items() if v is not None}
            if profile:
                record["profileData"] = p["profileData"]
            record["platformInfo"] = platforms.get(pid, [])
            if events:
                record["events"] = summaries.get(pid, {})
            records.append(record)
        return records

    # ---- analytics ---------------------------------------------------------------------------------------------

    def trends(self, query: Query, unique: bool, sum_prop: str | None) -> dict[int, Any]:
        """Per day: the event count, the set of profile ids (unique) or the property sum."""
        sql = query.events_where()
        with self.lock:
            if unique:
                per_day: dict[int, Any] = defaultdict(set)
                for day, pid in self.conn.execute(
                    f"SELECT DISTINCT e.day, e.pid FROM events e WHERE {sql.where()}", sql.params
                ):
                    per_day[day].add(pid)
                return per_day
            expr = f"TOTAL({extract('e.props', sum_prop)})" if sum_prop else "COUNT(*)"
            return dict(
                self.conn.execute(
                    f"SELECT e.day, {expr} FROM events e WHERE {sql.where()} GROUP BY e.day", sql.params
                ).fetchall()
            )

    def top_values(self, query: Query, property_type: str, name: str) -> list[tuple[Any, int]]:
        """(value, events) pairs of one property over the matching events (``query.top_expression`` names it)."""
        sql = query.events_where()
        expr, join = top_expression(property_type, name)
        with self.lock:
            return self.conn.execute(
                f"SELECT {expr} AS v, COUNT(*) FROM events e{join} WHERE {sql.where()} AND v IS NOT NULL GROUP BY v",
                sql.params,
            ).fetchall()

    def now(self, flags: Mapping[str, bool]) -> dict[str, Any]:
        """Users active in the five minutes before the newest event, with the requested breakdowns."""
        with self.lock:
            newest = self.conn.execute("SELECT MAX(ts) FROM events").fetchone()[0]
            if newest is None:
                return {"count": 0, "last_processed_ts": int(time.time())}
            latest: dict[int, tuple[int | None, int]] = {}
            for pid, did, sid in self.conn.execute(
                "SELECT pid, did, sid FROM events WHERE ts > ? ORDER BY ts, id", (newest - 300,)
            ):
                latest[pid] = (did, sid)
            pids = list(latest)
            devices = self._device_rows(d for d, _ in latest.values() if d is not None)
            info: dict[int, tuple[int, bool, bool]] = {}
            customers: set[int] = set()
            # Profile facts feed only the user_type and new breakdowns: not looked up when neither is asked for.
            wanted = flags.get("user_type") or flags.get("new")
            for chunk in _chunks(pids, 900) if wanted else ():
                marks = ",".join("?" * len(chunk))
                for pid, created, email, phone, token in self.conn.execute(
                    "SELECT p.pid, p.created_ts, p.email, p.phone, EXISTS (SELECT 1 FROM devices d "
                    f"WHERE d.pid = p.pid AND d.push_token IS NOT NULL) FROM profiles p WHERE p.pid IN ({marks})",
                    chunk,
                ):
                    info[pid] = (created, bool(email or phone or token), False)
                customers.update(
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT DISTINCT pid FROM events WHERE name = 'Charged' AND pid IN ({marks})", chunk
                    )
                )
        result: dict[str, Any] = {"count": len(pids)}

        def breakdown(group: Iterable[int]) -> dict[str, dict[str, int]]:
            out = {
                "session_source": dict.fromkeys(NOW_SOURCES, 0),
                "browser": dict.fromkeys(NOW_BROWSERS, 0),
                "os": dict.fromkeys(NOW_OS, 0),
                "device": dict.fromkeys(NOW_DEVICES, 0),
            }
            for pid in group:
                did, sid = latest[pid]
                device = devices.get(did) if did is not None else None
                source = str(self._sessions.get(sid, {}).get("session_source", "unavailable")).lower()
                out["session_source"][source if source in NOW_SOURCES else "others"] += 1
                web = device is not None and device.get("platform") == "Web"
                browser = (device or {}).get("browser") if web else "mobileapp"
                out["browser"][browser if browser in NOW_BROWSERS else "others"] += 1
                os_name = (device or {}).get("os")
                out["os"][os_name if os_name in NOW_OS else "others"] += 1
                kind = (device or {}).get("device_type") or "mobile"
                out["device"][kind if kind in NOW_DEVICES else "mobile"] += 1
            return out

        everyone = breakdown(pids)
        new_users = [pid for pid in pids if pid in info and info[pid][0] >= newest - 86400]
        if flags.get("user_type"):
            result["user_type"] = {
                "new": len(new_users),
                "repeat": len(pids) - len(new_users),
                "addressable": sum(1 for pid in pids if pid in info and info[pid][1]),
                "customer": sum(1 for pid in pids if pid in customers),
            }
        for key in ("session_source", "browser", "os", "device"):
            if flags.get(key):
                result[key] = everyone[key]
        if flags.get("new"):
            result["new"] = breakdown(new_users)
        result["last_processed_ts"] = newest
        return result

    # ---- campaigns ---------------------------------------------------------------------------------------------

    def estimates(self, audience: Query | None, target_mode: str, devices: Sequence[str]) -> dict[str, int]:
        """Reach per device (push), per browser (webpush) or under "web" (other channels), for ``audience``."""
        aud = audience.profiles_where() if audience else Sql()
        where, params = aud.where(), aud.params
        with self.lock:
            if target_mode in ("push", "webpush"):
                opt_in = f"coalesce({extract('p.data', 'MSG-push')}, 1) != 0"
                if target_mode == "push":
                    group, cond = "d.platform", "d.platform IN ('Android','iOS','Windows')"
                else:
                    group, cond = "d.browser", "d.platform = 'Web'"
                found = dict(
                    self.conn.execute(
                        f"SELECT {group}, COUNT(DISTINCT d.pid) FROM devices d JOIN profiles p ON p.pid = d.pid "
                        f"WHERE {where} AND {cond} AND d.push_token IS NOT NULL AND {opt_in} GROUP BY {group}",
                        params,
                    ).fetchall()
                )
                if target_mode == "push":
                    return {dev: int(found.get(PLATFORM_FOR_DEVICE.get(dev, dev), 0)) for dev in devices}
                return {str(k): int(v) for k, v in sorted(found.items()) if k}
            channel = {
                "email": ("p.email", "MSG-email"),
                "sms": ("p.phone", "MSG-sms"),
                "whatsapp": ("p.phone", "MSG-whatsapp"),
            }
            if target_mode in channel:
                column, key = channel[target_mode]
                cond = f"{column} IS NOT NULL AND coalesce({extract('p.data', key)}, 1) != 0"
            else:
                cond = "1"
            n = self.conn.execute(f"SELECT COUNT(*) FROM profiles p WHERE {where} AND {cond}", params).fetchone()[0]
            return {"web": int(n)}

    def create_campaign(self, row: Mapping[str, Any]) -> int:
        with self.lock:
            cid = max(
                int(row["created_ts"]), (self.conn.execute("SELECT MAX(id) FROM campaigns").fetchone()[0] or 0) + 1
            )
            self.conn.execute(
                "INSERT INTO campaigns (id,name,target_mode,status,scheduled_on,created_ts,sent,viewed,clicked,"
                "delivery,labels,devices,payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cid,
                    row["name"],
                    row["target_mode"],
                    row["status"],
                    row["scheduled_on"],
                    row["created_ts"],
                    row.get("sent", 0),
                    row.get("viewed", 0),
                    row.get("clicked", 0),
                    row.get("delivery", "api"),
                    _dumps(row.get("labels", [])),
                    _dumps(row.get("devices", [])),
                    _dumps(row.get("payload", {})),
                ),
            )
            return cid

    def list_campaigns(self, start: int, end: int) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, name, scheduled_on, status FROM campaigns WHERE scheduled_on BETWEEN ? AND ? "
                "ORDER BY scheduled_on, id",
                (start * 10000, end * 10000 + 2359),
            ).fetchall()
        return [{"id": r[0], "name": r[1], "scheduled_on": r[2], "status": r[3]} for r in rows]

    def save_custom_list(
        self, name: str, keys: Sequence[tuple[str, str]], *, replace: bool, meta: Mapping[str, str], now: int
    ) -> tuple[int, int] | None:
        """Store a custom list segment of the profiles ``keys`` name ((kind, value) with kind identity, email or
        objectId): returns (segment id, profiles matched), or None when the name exists and ``replace`` is false."""
        with self.lock:
            found = self.conn.execute("SELECT id FROM segments WHERE name = ?", (name,)).fetchone()
            if found is not None and not replace:
                return None
            pids: set[int] = set()
            for kind, value in keys:
                if kind == "objectId":
                    sql = "SELECT pid FROM devices WHERE object_id = ?"
                else:
                    sql = f"SELECT pid FROM profiles WHERE {'email' if kind == 'email' else 'identity'} = ?"
                pids.update(r[0] for r in self.conn.execute(sql, (value,)))
            row = (name, meta.get("creator"), meta.get("email"), meta.get("filename"), now, _dumps(sorted(pids)))
            if found is not None:
                self.conn.execute(
                    "UPDATE segments SET name=?, creator=?, email=?, filename=?, created_ts=?, pids=? WHERE id=?",
                    (*row, found[0]),
                )
                return int(found[0]), len(pids)
            cur = self.conn.execute(
                "INSERT INTO segments (name, creator, email, filename, created_ts, pids) VALUES (?,?,?,?,?,?)", row
            )
            assert cur.lastrowid is not None
            return cur.lastrowid, len(pids)

    def has_segment(self, sid: int) -> bool:
        with self.lock:
            return self.conn.execute("SELECT 1 FROM segments WHERE id = ?", (sid,)).fetchone() is not None

    def get_campaign(self, cid: int) -> dict[str, Any] | None:
        with self.lock:
            self.conn.row_factory = sqlite3.Row
            try:
                row = self.conn.execute("SELECT * FROM campaigns WHERE id = ?", (cid,)).fetchone()
            finally:
                self.conn.row_factory = None
        return dict(row) if row else None

    def stop_campaign(self, cid: int) -> str | None:
        """Stop a campaign that has not finished; returns its status before the call (None: unknown id)."""
        with self.lock:
            row = self.conn.execute("SELECT status FROM campaigns WHERE id = ?", (cid,)).fetchone()
            if row is None:
                return None
            if row[0] in ("scheduled", "pending", "running", "paused"):
                self.conn.execute("UPDATE campaigns SET status = 'stopped' WHERE id = ?", (cid,))
            return str(row[0])

    def report(
        self, start: int, end: int, channels: set[str] | None, statuses: set[str] | None
    ) -> list[dict[str, Any]]:
        with self.lock:
            self.conn.row_factory = sqlite3.Row
            try:
                rows = self.conn.execute(
                    "SELECT * FROM campaigns WHERE scheduled_on BETWEEN ? AND ? ORDER BY scheduled_on, id",
                    (start * 10000, end * 10000 + 2359),
                ).fetchall()
            finally:
                self.conn.row_factory = None
        channel_name = {"webpush": "browser"}
        out = []
        for r in rows:
            channel = channel_name.get(r["target_mode"], r["target_mode"])
            if channels and channel not in channels:
                continue
            if statuses and r["status"] not in statuses:
                continue
            out.append(
                {
                    "message_id": r["id"],
                    "message_name": r["name"],
                    "channel": channel,
                    "delivery": r["delivery"],
                    "start_date": r["scheduled_on"],
                    "status": r["status"],
                    "sent": r["sent"],
                    "viewed": r["viewed"],
                    "clicked": r["clicked"],
                    "labels": _loads(r["labels"]) or [],
                    "device": _loads(r["devices"]) or [],
                }
            )
        return out

    # ---- writes ------------------------------------------------------------------------------------------------

    def upload(
        self, records: Sequence[Any], *, now: int, dry_run: bool, discarded: frozenset[str] = frozenset()
    ) -> list[tuple[int, int]]:
        """Validate and apply upload records in one transaction (rolled back for a dry run).

        Returns the (0-based index, error code) of every rejected record.
        """
        failed: list[tuple[int, int]] = []
        batch = _UploadBatch()
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                results = [check(record, now, discarded) for record in records]
                self._prefetch([r for r in results if not isinstance(r, int)], batch)
                for index, result in enumerate(results):
                    if isinstance(result, int):
                        failed.append((index, result))
                        continue
                    code = self._apply(result, batch)
                    if code is not None:
                        failed.append((index, code))
                # Nothing in an upload reads events, so they go in together, in record order (same ids).
                self.conn.executemany(
                    "INSERT INTO events (pid, did, name, ts, day, props, sid) VALUES (?,?,?,?,?,?,0)", batch.events
                )
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("ROLLBACK" if dry_run else "COMMIT")
        return failed

    def _prefetch(self, checked: Sequence[Checked], batch: _UploadBatch) -> None:
        """Resolve the known identities and objectIds of an upload in a few queries instead of one per record."""
        identities = sorted({r.id_value for r in checked if r.kind != "token" and r.id_key == "identity"})
        for chunk in _chunks(identities, 900):
            for identity, pid, did in self.conn.execute(
                "SELECT identity, pid, (SELECT MIN(did) FROM devices WHERE devices.pid = profiles.pid) FROM profiles "
                f"WHERE identity IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                batch.resolved[("identity", identity)] = (int(pid), did)
        object_ids = sorted({r.id_value for r in checked if r.kind != "token" and r.id_key == "objectId"})
        for chunk in _chunks(object_ids, 900):
            for object_id, pid, did in self.conn.execute(
                f"SELECT object_id, pid, did FROM devices WHERE object_id IN ({','.join('?' * len(chunk))})", chunk
            ):
                batch.resolved[("objectId", object_id)] = (int(pid), int(did))

    def _apply(self, rec: Checked, batch: _UploadBatch) -> int | None:
        if rec.kind == "token":
            token = rec.record["tokenData"]
            row = self.conn.execute("SELECT did, platform FROM devices WHERE object_id = ?", (rec.id_value,)).fetchone()
            if row is None:
                # Like an unknown identity, an unknown objectId becomes a new profile owning that device.
                pid = self._new_profile(None, {}, rec.ts)
                platform = TOKEN_PLATFORMS.get(token["type"])
                cur = self.conn.execute(
                    "INSERT INTO devices (object_id, pid, platform) VALUES (?, ?, ?)", (rec.id_value, pid, platform)
                )
                row = (cur.lastrowid, platform)
            if not token_fits_platform(token["type"], row[1]):
                return 534
            self.conn.execute(
                "UPDATE devices SET push_token = ?, token_type = ? WHERE did = ?", (token["id"], token["type"], row[0])
            )
            return None
        # An identity or objectId keeps its (pid, did) for the whole upload: profiles and devices are only added,
        # and a new device always comes with a new profile. FBID/GPID live in profile data, which records change.
        key = (rec.id_key, rec.id_value)
        found = batch.resolved.get(key)
        if found is None:
            found = self._resolve(rec.id_key, rec.id_value, rec.ts)
            if rec.id_key in ("identity", "objectId"):
                batch.resolved[key] = found
        pid, did = found
        if rec.kind == "event":
            props = _dumps(rec.record.get("evtData", {}))
            batch.events.append((pid, did, rec.record["evtName"], rec.ts, day_of(rec.ts), props))
        else:
            self._merge_profile(pid, rec.record.get("profileData", {}))
        return None

    def _resolve(self, key: str, value: str, ts: int) -> tuple[int, int | None]:
        """The (pid, did) a record's identity refers to, creating the profile when it is unknown."""
        if key == "objectId":
            row = self.conn.execute("SELECT pid, did FROM devices WHERE object_id = ?", (value,)).fetchone()
            if row:
                return int(row[0]), int(row[1])
            pid = self._new_profile(None, {}, ts)
            cur = self.conn.execute("INSERT INTO devices (object_id, pid) VALUES (?, ?)", (value, pid))
            return pid, cur.lastrowid
        if key == "identity":
            found = self.conn.execute("SELECT pid FROM profiles WHERE identity = ?", (value,)).fetchone()
            data: dict[str, Any] = {}
        else:
            found = self.conn.execute(
                f"SELECT pid FROM profiles WHERE {extract('data', key)} = ? ORDER BY pid LIMIT 1", (value,)
            ).fetchone()
            data = {key: value}
        if found:
            pid = int(found[0])
            dev = self.conn.execute("SELECT MIN(did) FROM devices WHERE pid = ?", (pid,)).fetchone()[0]
            return pid, dev
        pid = self._new_profile(value if key == "identity" else None, data, ts)
        cur = self.conn.execute("INSERT INTO devices (object_id, pid) VALUES (?, ?)", (uuid.uuid4().hex, pid))
        return pid, cur.lastrowid

    def _new_profile(self, identity: str | None, data: dict[str, Any], ts: int) -> int:
        cur = self.conn.execute(
            "INSERT INTO profiles (identity, data, created_ts) VALUES (?, ?, ?)", (identity, _dumps(data), ts)
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _merge_profile(self, pid: int, updates: Mapping[str, Any]) -> None:
        row = self.conn.execute("SELECT data FROM profiles WHERE pid = ?", (pid,)).fetchone()
        data = _loads(row[0])
        for key, value in updates.items():
            if key.lower() == "identity":
                continue
            if key == "Phone" and isinstance(value, int):
                value = "+" + str(value)
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.conn.execute(
            "UPDATE profiles SET data = ?, email = ?, name = ?, phone = ? WHERE pid = ?",
            (_dumps(data), data.get("Email"), data.get("Name"), data.get("Phone"), pid),
        )

    def delete_profiles(self, identities: Sequence[str], guids: Sequence[str]) -> int:
        with self.lock:
            pids: set[int] = set()
            for value in identities:
                pids.update(r[0] for r in self.conn.execute("SELECT pid FROM profiles WHERE identity = ?", (value,)))
            for value in guids:
                pids.update(r[0] for r in self.conn.execute("SELECT pid FROM devices WHERE object_id = ?", (value,)))
            if not pids:
                return 0
            ids = sorted(pids)
            marks = ",".join("?" * len(ids))
            self.conn.execute("BEGIN")
            for table in ("events", "devices", "profiles"):
                self.conn.execute(f"DELETE FROM {table} WHERE pid IN ({marks})", ids)
            self.conn.execute("COMMIT")
            return len(ids)

    def set_subscription(self, channel: str, value: str, subscribed: bool) -> int:
        """Channel DND for everyone sharing this phone or email (``/1/subscribe``); returns the profiles touched."""
        column, key = {
            "email": ("email", "MSG-email"),
            "phone": ("phone", "MSG-sms"),
            "whatsapp": ("phone", "MSG-whatsapp"),
        }[channel]
        with self.lock:
            cur = self.conn.execute(
                f"UPDATE profiles SET data = json_set(data, ?, json(?)) WHERE {column} = ?",
                (json_path(key), "true" if subscribed else "false", value),
            )
            return cur.rowcount

    def disassociate_phone(self, phone: str) -> int:
        with self.lock:
            cur = self.conn.execute(
                "UPDATE profiles SET phone = NULL, data = json_remove(data, '$.Phone') WHERE phone = ?", (phone,)
            )
            return cur.rowcount


class _UploadBatch:
    """What one upload call gathers as it goes: resolved identities and the event rows to insert."""

    def __init__(self) -> None:
        self.resolved: dict[tuple[str, str], tuple[int, int | None]] = {}
        self.events: list[tuple[Any, ...]] = []


def _device_dict(row: Sequence[Any]) -> dict[str, Any]:
    keys = ("did", "objectId", "pid", "platform", "os", "os_version", "app_version", "make", "model", "browser",
            "device_type", "push_token", "token_type")  # fmt: skip
    return {k: v for k, v in zip(keys, row, strict=True) if v is not None}


def _chunks(items: Sequence[T], size: int) -> Iterable[list[T]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
