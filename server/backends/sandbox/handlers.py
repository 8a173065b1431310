"""The sandbox's CleverTap endpoints (reference §2-§8): one method per route, over the SQLite store.

Choices where the reference leaves the real behaviour open:
* Upload: more than 1000 records, or more than 100 ``token`` records, rejects the whole request with HTTP 400 and
  stores nothing. Restricted system events (code 513) are listed in ``validate.RESTRICTED_EVENTS``.
* Validation failures outside upload answer HTTP 400 ``{"status":"fail","error":...,"code":400}``; an unknown
  campaign id is such a failure. "This target hasn't been completed" and "Profile not found" are HTTP 200.
* Cursors are random tokens held in memory (per app), percent-encoded on the way out. A page may be fetched again
  with the same cursor (retries are safe); every page's ``previous_cursor`` is the raw (decoded) cursor it was
  fetched with, so a client can read that page again. Unknown, expired or wrong-endpoint cursors answer HTTP 400
  "Invalid cursor"; a re-encoded one (``%25``) answers HTTP 400 "Incorrect Usage" with code 1.
* Profile exports fix their profile list when the cursor is created; event exports page by (day, id) and so see
  events uploaded meanwhile.
* ``/1/send/*.json`` accepts the legacy shape without ``provider_nick_name`` (the account's default provider).
* Times are UTC (the demo account's timezone).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .config import SandboxConfig
from .messages import Answer, HttpError, Request, bad
from .query import TOP_PROPERTY_TYPES, Query, Sql, day_keys, parse_query, parse_range
from .store import Store
from .validate import MAX_RECORDS, MAX_TOKENS, message

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Answer]]

MAX_BATCH_SIZE = 5000
DEFAULT_BATCH_SIZE = 100
PENDING_COUNT_TTL_S = 3600.0
TARGET_MODES = ("push", "email", "sms", "webpush", "whatsapp", "webhook", "notificationinbox")
PUSH_DEVICES = ("android", "ios", "windows")
SEND_CHANNELS = ("push", "email", "sms", "webpush", "whatsapp")
SEND_ID_KEYS = ("FBID", "GPID", "Email", "Identity", "objectId")
CLICK_RATE = {"push": 0.06, "webpush": 0.04, "email": 0.03, "sms": 0.02}


def _top_values(store: Store, *, query: Query, ptype: str, name: str) -> list[tuple[Any, int]]:
    return store.top_values(query, ptype, name)


@dataclass
class Cursor:
    kind: str  # events | profiles
    query: Query
    batch_size: int
    flags: dict[str, bool]
    created: float
    last_used: float
    after: tuple[int, int] | None = None  # events: (day, id) of the last record served
    pids: list[int] | None = None  # profiles: the matching profile ids, fixed when the export started
    offset: int = 0


@dataclass
class PendingCount:
    path: str
    remaining: int
    result: dict[str, Any]
    created: float = 0.0


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes")


def _positive_id(body: Mapping[str, Any]) -> int:
    cid = body.get("id")
    if isinstance(cid, str) and cid.isdigit():
        cid = int(cid)
    if isinstance(cid, bool) or not isinstance(cid, int) or cid <= 0:
        raise bad("'id' must be a positive integer")
    return cid


def _yyyymmddhhmm(ts: float) -> int:
    return int(time.strftime("%Y%m%d%H%M", time.gmtime(ts)))


def _strings(value: Any, what: str, limit: int) -> list[str]:
    values = [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    if not isinstance(values, list) or not values:
        raise bad(f"'{what}' must be a non-empty string or list")
    if len(values) > limit:
        raise bad(f"At most {limit} values of '{what}' per request")
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) for v in values):
        raise bad(f"'{what}' values must be non-empty strings")
    return [str(v) for v in values]


def _nice_width(span: float) -> float:
    if span <= 0:
        return 1
    raw = span / 10
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class Handlers:
    """The endpoints. The app supplies ``config``, the state below and ``_db`` (run a function on the store)."""

    config: SandboxConfig
    _state_lock: threading.Lock
    _cursors: dict[str, Cursor]
    _counts: dict[str, PendingCount]

    async def _db(self, fn: Callable[[Store], T]) -> T:
        raise NotImplementedError

    def routes(self) -> dict[str, dict[str, Handler]]:
        """Path -> method -> handler."""
        routes: dict[str, dict[str, Handler]] = {
            "/1/upload": {"POST": self._upload},
            "/1/events.json": {"POST": self._events, "GET": self._events},
            "/1/profiles.json": {"POST": self._profiles, "GET": self._profiles},
            "/1/profile.json": {"GET": self._profile},
            "/1/counts/events.json": {"POST": self._count_events, "GET": self._poll},
            "/1/counts/profiles.json": {"POST": self._count_profiles, "GET": self._poll},
            "/1/counts/trends.json": {"POST": self._trends, "GET": self._poll},
            "/1/counts/top.json": {"POST": self._top, "GET": self._poll},
            "/1/now.json": {"POST": self._now},
            "/1/targets/create.json": {"POST": self._create_campaign},
            "/1/targets/list.json": {"POST": self._list_campaigns},
            "/1/targets/result.json": {"POST": self._campaign_result},
            "/1/targets/stop.json": {"POST": self._stop_campaign},
            "/1/delete/profiles.json": {"POST": self._delete_profiles},
            "/1/demerge/profiles.json": {"POST": self._demerge},
            "/1/subscribe": {"POST": self._subscribe},
            "/1/disassociate": {"POST": self._disassociate},
            "/1/message/report.json": {"POST": self._message_report},
        }
        for channel in SEND_CHANNELS:
            routes[f"/1/send/{channel}.json"] = {"POST": self._send}
        return routes

    def _new_cursor(self, state: Cursor) -> str:
        """Register a cursor; returns it percent-encoded, as CleverTap does (``/`` and ``=`` become %2F, %3D)."""
        # A fixed first group that encodes to "Zi/j" keeps a "/" in every cursor, like the documented samples.
        token = ("Zi/j" + secrets.token_urlsafe(39).replace("-", "+").replace("_", "/"))[:54] + "=="
        with self._state_lock:
            now = time.monotonic()
            for key in [k for k, c in self._cursors.items() if self._expired(c, now)]:
                del self._cursors[key]
            self._cursors[token] = state
        return urllib.parse.quote(token, safe="")

    def _expired(self, cursor: Cursor, now: float) -> bool:
        if cursor.kind == "profiles":
            return now - cursor.created > self.config.profile_cursor_ttl_s
        return (
            now - cursor.created > self.config.event_cursor_ttl_s
            or now - cursor.last_used > self.config.event_cursor_idle_s
        )

    def _pending(self, path: str, result: dict[str, Any], polls: int) -> Answer:
        if polls <= 0:
            return 200, result
        req_id = secrets.randbelow(9 * 10**14) + 10**14
        now = time.monotonic()
        with self._state_lock:
            for key in [k for k, p in self._counts.items() if now - p.created > PENDING_COUNT_TTL_S]:
                del self._counts[key]
            self._counts[str(req_id)] = PendingCount(path, polls - 1, result, now)
        return 200, {"status": "partial", "req_id": req_id}

    # ---- upload ------------------------------------------------------------------------------------------------

    async def _upload(self, req: Request) -> Answer:
        body = req.json()
        records = body.get("d") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise bad("The payload must be a JSON object with a 'd' array of records")
        if len(records) > MAX_RECORDS:
            raise bad(f"Too many records: at most {MAX_RECORDS} per request")
        tokens = sum(1 for r in records if isinstance(r, dict) and r.get("type") == "token")
        if tokens > MAX_TOKENS:
            raise bad(f"Too many token records: at most {MAX_TOKENS} per request")
        dry_run = _flag(req.query.get("dryRun"), False)
        now = int(time.time())
        discarded = frozenset(self.config.discarded_events)
        failed = await self._db(lambda s: s.upload(records, now=now, dry_run=dry_run, discarded=discarded))
        unprocessed = [
            {"status": "fail", "code": code, "error": message(code, index), "record": records[index]}
            for index, code in failed
        ]
        processed = len(records) - len(failed)
        status = "success" if not failed else ("fail" if processed == 0 else "partial")
        return 200, {"status": status, "processed": processed, "unprocessed": unprocessed}

    # ---- cursor exports ----------------------------------------------------------------------------------------

    async def _events(self, req: Request) -> Answer:
        return await self._export(req, "events")

    async def _profiles(self, req: Request) -> Answer:
        return await self._export(req, "profiles")

    async def _export(self, req: Request, kind: str) -> Answer:
        if req.method == "GET" and "cursor" in req.query:
            return await self._page(req, kind)
        if req.method == "GET":
            if "query" not in req.query:
                raise bad("Incorrect Usage: expected 'cursor', or 'batch_size' and 'query'")
            try:
                body = json.loads(req.query["query"])
            except ValueError:
                raise bad("Malformed JSON in the 'query' parameter") from None
        else:
            body = req.json_object()
        raw_batch = req.query.get("batch_size", str(DEFAULT_BATCH_SIZE))
        if not raw_batch.isdigit() or not 1 <= int(raw_batch) <= MAX_BATCH_SIZE:
            raise bad(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}")
        query = parse_query(body, require_event=kind == "events")
        flags = {
            "app": _flag(req.query.get("app"), False),
            "events": _flag(req.query.get("events"), True),
            "profile": _flag(req.query.get("profile"), True),
        }
        now = time.monotonic()
        state = Cursor(kind, query, int(raw_batch), flags, created=now, last_used=now)
        if kind == "profiles":
            state.pids = await self._db(lambda s: s.profile_pids(query))
        return 200, {"status": "success", "cursor": self._new_cursor(state)}

    async def _page(self, req: Request, kind: str) -> Answer:
        raw = req.raw_param("cursor") or ""
        if "%25" in raw.upper():
            raise HttpError(400, "Incorrect Usage", code=1)
        token = urllib.parse.unquote(raw)
        now = time.monotonic()
        with self._state_lock:
            state = self._cursors.get(token)
            if state is None or state.kind != kind or self._expired(state, now):
                raise bad("Invalid cursor")
            if self.config.cursor_in_progress > 0:
                self.config.cursor_in_progress -= 1
                return 200, {"status": "fail", "error": "Request still in progress, please retry later", "code": 2}
            state.last_used = now
        nxt = dataclasses.replace(state, last_used=now)
        if kind == "events":
            records, last, more = await self._db(
                lambda s: s.event_page(
                    state.query, state.after, state.batch_size, app=state.flags["app"], profile=state.flags["profile"]
                )
            )
            nxt.after = last
        else:
            pids = state.pids or []
            chunk = pids[state.offset : state.offset + state.batch_size]
            records = await self._db(
                lambda s: s.profile_records(chunk, events=state.flags["events"], profile=state.flags["profile"])
            )
            nxt.offset = state.offset + state.batch_size
            more = nxt.offset < len(pids)
        page: dict[str, Any] = {"status": "success", "previous_cursor": token}
        if more:
            page["next_cursor"] = self._new_cursor(nxt)
        if records:
            page["records"] = records
        return 200, page

    async def _profile(self, req: Request) -> Answer:
        given = [(k, req.query[k]) for k in ("email", "identity", "objectId") if req.query.get(k)]
        if len(given) != 1:
            raise bad("Provide exactly one of email, identity or objectId")
        key, value = given[0]
        record = await self._db(lambda s: s.find_profile(key, value))
        if record is None:
            return 200, {"status": "fail", "error": "Profile not found", "code": 404}
        return 200, {"status": "success", "record": record}

    # ---- counts ------------------------------------------------------------------------------------------------

    async def _count_events(self, req: Request) -> Answer:
        query = parse_query(req.json_object())
        count = await self._db(lambda s: s.count_events(query))
        return self._pending(req.path, {"status": "success", "count": count}, self.config.count_partial_polls)

    async def _count_profiles(self, req: Request) -> Answer:
        query = parse_query(req.json_object(), require_event=False)
        count = await self._db(lambda s: s.count_profiles(query))
        return self._pending(req.path, {"status": "success", "count": count}, self.config.count_partial_polls)

    async def _poll(self, req: Request) -> Answer:
        req_id = req.query.get("req_id", "")
        with self._state_lock:
            pending = self._counts.get(req_id)
            if pending is None or pending.path != req.path:
                return 400, {"status": "fail", "error": "Invalid request id"}
            if pending.remaining > 0:
                pending.remaining -= 1
                return 200, {"status": "partial", "req_id": int(req_id)}
            return 200, pending.result

    async def _checked_event(self, body: Mapping[str, Any]) -> Query:
        query = parse_query(body)
        name = query.event_name or ""
        if not await self._db(lambda s: s.has_event(name)):
            raise bad(json.dumps([f"Invalid event : {name}"]))
        return query

    async def _trends(self, req: Request) -> Answer:
        body = req.json_object()
        query = await self._checked_event(body)
        groups = body.get("groups")
        if not isinstance(groups, dict) or not groups:
            raise bad("'groups' must be a non-empty object")
        for name, group in groups.items():
            if not isinstance(group, dict) or group.get("trend_type") not in ("daily", "weekly", "monthly"):
                raise bad(f"groups.{name}.trend_type must be daily, weekly or monthly")
        unique = bool(body.get("unique", False))
        sum_prop = body.get("sum_event_prop")
        if sum_prop is not None and not isinstance(sum_prop, str):
            raise bad("'sum_event_prop' must be a property name")
        per_day = await self._db(lambda s: s.trends(query, unique, sum_prop))
        assert query.start is not None and query.end is not None
        days = day_keys(query.start, query.end)
        result: dict[str, Any] = {"status": "success"}
        for name, group in groups.items():
            buckets: dict[str, Any] = {}
            for day in days:
                if group["trend_type"] == "daily":
                    key = day.strftime("%Y%m%d")
                elif group["trend_type"] == "weekly":
                    iso = day.isocalendar()
                    key = f"{iso[0]}{iso[1]:02d}"
                else:
                    key = day.strftime("%Y%m")
                value = per_day.get(int(day.strftime("%Y%m%d")))
                if unique:
                    buckets.setdefault(key, set()).update(value or ())
                else:
                    buckets[key] = buckets.get(key, 0) + (value or 0)
            result[name] = {
                k: len(v) if unique else (round(v, 2) if isinstance(v, float) else v) for k, v in buckets.items()
            }
        return self._pending(req.path, result, self.config.trends_partial_polls)

    async def _top(self, req: Request) -> Answer:
        body = req.json_object()
        query = await self._checked_event(body)
        groups = body.get("groups")
        if not isinstance(groups, dict) or not groups:
            raise bad("'groups' must be a non-empty object")
        result: dict[str, Any] = {"status": "success"}
        for name, group in groups.items():
            if not isinstance(group, dict) or not isinstance(group.get("name"), str):
                raise bad(f"groups.{name} needs 'property_type' and 'name'")
            ptype = group.get("property_type", "event_properties")
            if ptype not in TOP_PROPERTY_TYPES:
                raise bad(f"groups.{name}.property_type must be one of {', '.join(TOP_PROPERTY_TYPES)}")
            top_n = group.get("top_n", 10)
            if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
                raise bad(f"groups.{name}.top_n must be a positive integer")
            values = await self._db(functools.partial(_top_values, query=query, ptype=str(ptype), name=group["name"]))
            result[name] = self._top_group(values, top_n, str(group.get("order", "desc")).lower() == "asc")
        return self._pending(req.path, result, self.config.trends_partial_polls)

    @staticmethod
    def _top_group(values: list[tuple[Any, int]], top_n: int, ascending: bool) -> dict[str, dict[str, int]]:
        numeric = bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in values)
        if not numeric:
            ranked = sorted(((str(v), n) for v, n in values), key=lambda x: (x[1] if ascending else -x[1], x[0]))
            return {"STR": dict(ranked[:top_n])}
        low, high = min(v for v, _ in values), max(v for v, _ in values)
        width = _nice_width(high - low)
        buckets: dict[float, int] = {}
        for v, n in values:
            start = (v // width) * width
            buckets[start] = buckets.get(start, 0) + n
        return {"NUMBER": {f"{_fmt(b)}-{_fmt(b + width)}": buckets[b] for b in sorted(buckets)}}

    async def _now(self, req: Request) -> Answer:
        body = req.json_object()
        flags = {k: bool(body.get(k)) for k in ("user_type", "session_source", "browser", "os", "device", "new")}
        result = await self._db(lambda s: s.now(flags))
        return 200, {"status": "success", **result}

    # ---- campaigns ---------------------------------------------------------------------------------------------

    async def _create_campaign(self, req: Request) -> Answer:
        body = req.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad("'name' is mandatory")
        mode = body.get("target_mode", "push")  # the older API (and its push example) has no target_mode
        if mode not in TARGET_MODES:
            raise bad(f"'target_mode' must be one of {', '.join(TARGET_MODES)}")
        has_where, has_segment = "where" in body, "segment" in body
        if has_where and has_segment:
            raise bad("Provide either 'where' or 'segment', not both")
        if not has_where and not has_segment:
            raise bad("'where' or 'segment' is mandatory")
        audience: Query | None = None
        if has_where:
            if not isinstance(body["where"], dict):
                raise bad("'where' must be an object")
            audience = parse_query(body["where"], require_event=False, empty_is_everyone=True)
        elif body["segment"] != "all":
            segment = body["segment"]
            if isinstance(segment, bool) or not isinstance(segment, int):
                raise bad("'segment' must be \"all\" or a segment id")
            if not await self._db(lambda s: s.has_segment(segment)):
                raise bad(f"Invalid segment id: {segment}")
            members = Sql()
            members.add("p.pid IN (SELECT value FROM json_each((SELECT pids FROM segments WHERE id = ?)))", segment)
            audience = Query(None, None, None, Sql(), members)
        content = body.get("content")
        if not isinstance(content, dict):
            raise bad("'content' is mandatory")
        required = {"push": ("title", "body"), "webpush": ("title", "body"), "notificationinbox": ("title", "body"),
                    "email": ("subject", "body", "sender_name"), "sms": ("body",)}.get(mode, ())  # fmt: skip
        missing = [k for k in required if not content.get(k)]
        if missing:
            raise bad(f"content.{missing[0]} is mandatory for {mode}")
        devices = body.get("devices", [])
        if mode == "push" and (
            not isinstance(devices, list) or not devices or any(d not in PUSH_DEVICES for d in devices)
        ):
            raise bad(f"'devices' is mandatory for push: a list of {', '.join(PUSH_DEVICES)}")
        when = body.get("when")
        now = time.time()
        if when == "now":
            scheduled_at = now
        elif isinstance(when, str):
            try:
                scheduled_at = dt.datetime.strptime(when, "%Y%m%d %H:%M").replace(tzinfo=dt.timezone.utc).timestamp()
            except ValueError:
                raise bad('\'when\' must be "now" or "YYYYMMDD HH:MM"') from None
            if scheduled_at < now - 60:
                raise bad("'when' must not be in the past")
        else:
            raise bad('\'when\' is mandatory: "now" or "YYYYMMDD HH:MM"')
        estimates = await self._db(lambda s: s.estimates(audience, mode, devices if mode == "push" else []))
        if body.get("estimate_only") is True:
            return 200, {"status": "success", "estimates": estimates}
        row: dict[str, Any] = {
            "name": name,
            "target_mode": mode,
            "status": "completed" if when == "now" else "scheduled",
            "scheduled_on": _yyyymmddhhmm(scheduled_at),
            "created_ts": int(now),
            "labels": body.get("labels") or [],
            "devices": devices,
            "payload": {k: v for k, v in body.items() if k not in ("name", "estimate_only")},
        }
        if when == "now":
            sent = sum(estimates.values())
            row.update(sent=sent, viewed=sent // 2, clicked=int(sent * CLICK_RATE.get(mode, 0.02)))
        cid = await self._db(lambda s: s.create_campaign(row))
        return 200, {"status": "success", "id": cid, "estimates": estimates}

    async def _list_campaigns(self, req: Request) -> Answer:
        start, end = parse_range(req.json_object())
        targets = await self._db(lambda s: s.list_campaigns(start, end))
        return 200, {"status": "success", "targets": targets}

    async def _campaign_result(self, req: Request) -> Answer:
        cid = _positive_id(req.json_object())
        campaign = await self._db(lambda s: s.get_campaign(cid))
        if campaign is None:
            raise bad(f"Invalid target id: {cid}")
        if campaign["status"] != "completed":
            return 200, {"error": "This target hasn't been completed", "status": "fail"}
        return 200, {"status": "success", "result": {"sent": campaign["sent"], "clicked": campaign["clicked"]}}

    async def _stop_campaign(self, req: Request) -> Answer:
        cid = _positive_id(req.json_object())
        if await self._db(lambda s: s.stop_campaign(cid)) is None:
            raise bad(f"Invalid target id: {cid}")
        return 200, {"status": "success"}

    async def _message_report(self, req: Request) -> Answer:
        body = req.json_object()
        start, end = parse_range(body)

        def values(key: str) -> set[str] | None:
            raw = body.get(key)
            if raw in (None, "", []):
                return None
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise bad(f"'{key}' must be a string or a list")
            return {str(i).strip() for i in items}

        channels, statuses = values("channel"), values("status")
        messages = await self._db(lambda s: s.report(start, end, channels, statuses))
        return 200, {"status": "success", "messages": messages}

    async def _send(self, req: Request) -> Answer:
        body = req.json_object()
        channel = req.path.rsplit("/", 1)[1].removesuffix(".json")
        to = body.get("to")
        if not isinstance(to, dict):
            raise bad("'to' is mandatory")
        total = 0
        for key in SEND_ID_KEYS:
            if key in to:
                if not isinstance(to[key], list):
                    raise bad(f"to.{key} must be a list")
                total += len(to[key])
        if total == 0:
            raise bad(f"'to' needs at least one of {', '.join(SEND_ID_KEYS)} with values")
        if total > MAX_RECORDS:
            raise bad(f"At most {MAX_RECORDS} recipients per request")
        content = body.get("content")
        if not isinstance(content, dict):
            raise bad("'content' is mandatory")
        required = {"push": ("title", "body"), "webpush": ("title", "body"), "email": ("subject", "body"),
                    "sms": ("body",)}.get(channel, ())  # fmt: skip
        missing = [k for k in required if not content.get(k)]
        if missing:
            raise bad(f"content.{missing[0]} is mandatory for {channel}")
        nick = body.get("provider_nick_name")
        if nick is not None and (not isinstance(nick, str) or not nick.strip()):
            raise bad("'provider_nick_name' must be the nick name of a configured provider")
        return 200, {"status": "success", "message": "Added to queue for processing"}

    # ---- profile management ------------------------------------------------------------------------------------

    async def _delete_profiles(self, req: Request) -> Answer:
        body = req.json_object()
        if "identity" in body and "guid" in body:
            raise bad("Provide either 'identity' or 'guid', not both")
        if "identity" not in body and "guid" not in body:
            raise bad("'identity' or 'guid' is mandatory")
        key = "identity" if "identity" in body else "guid"
        values = _strings(body[key], key, 100)
        identities, guids = (values, []) if key == "identity" else ([], values)
        await self._db(lambda s: s.delete_profiles(identities, guids))
        return 200, {"status": "success"}

    async def _demerge(self, req: Request) -> Answer:
        _strings(req.json_object().get("identities"), "identities", 100)
        return 200, {"status": "success"}

    async def _batch(self, req: Request, apply: Callable[[Store, dict[str, Any]], str | None]) -> Answer:
        entries = req.json_object().get("d")
        if not isinstance(entries, list):
            raise bad("The payload must be a JSON object with a 'd' array")
        if len(entries) > MAX_RECORDS:
            raise bad(f"Too many records: at most {MAX_RECORDS} per request")

        def run(store: Store) -> list[dict[str, Any]]:
            failed = []
            for index, entry in enumerate(entries):
                error = apply(store, entry) if isinstance(entry, dict) else "Invalid record."
                if error is not None:
                    failed.append(
                        {
                            "status": "fail",
                            "code": 400,
                            "error": f"{error}Skipped record number : {index + 1}",
                            "record": entry,
                        }
                    )
            return failed

        unprocessed = await self._db(run)
        processed = len(entries) - len(unprocessed)
        status = "success" if not unprocessed else ("fail" if processed == 0 else "partial")
        return 200, {"status": status, "processed": processed, "unprocessed": unprocessed}

    async def _subscribe(self, req: Request) -> Answer:
        def apply(store: Store, entry: dict[str, Any]) -> str | None:
            kind, value, status = entry.get("type"), entry.get("value"), str(entry.get("status", "")).lower()
            if kind not in ("phone", "email", "whatsapp"):
                return "type must be phone, email or whatsapp."
            if not isinstance(value, str) or not value:
                return "value is mandatory."
            if status not in ("unsubscribe", "resubscribe"):
                return "status must be Unsubscribe or Resubscribe."
            store.set_subscription(kind, value, status == "resubscribe")
            return None

        return await self._batch(req, apply)

    async def _disassociate(self, req: Request) -> Answer:
        def apply(store: Store, entry: dict[str, Any]) -> str | None:
            if entry.get("type") != "phone":
                return "type must be phone."
            value = entry.get("value")
            if not isinstance(value, str) or not value:
                return "value is mandatory."
            store.disassociate_phone(value)
            return None

        return await self._batch(req, apply)
