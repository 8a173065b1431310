"""Random query-language filters: counts, exports (all pages), trends and campaign estimates agree with each other and
with a brute-force evaluation over the store's rows, written here from the documented semantics."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.backends.sandbox import SandboxApp, SandboxConfig, create_app

AUTH = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
ANCHOR = dt.date(2026, 5, 1)
FIRST_DAY = ANCHOR - dt.timedelta(days=90)
EVENT_NAMES = ("App Launched", "Product Viewed", "Charged", "Searched", "Added To Cart", "Cart Abandoned")
CITIES = {  # (country, state, city) -> centre, as the seed places them
    ("India", "Maharashtra", "Mumbai"): (19.076, 72.8777),
    ("India", "Karnataka", "Bengaluru"): (12.9716, 77.5946),
    ("Germany", "Berlin", "Berlin"): (52.52, 13.405),
    ("United States", "New York", "New York"): (40.7128, -74.006),
    ("United States", "California", "San Francisco"): (37.7749, -122.4194),
}
SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ---- the store's rows -------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Rows:
    profiles: dict[int, dict[str, Any]]  # pid -> {email, phone, data, lat, lon}
    devices: dict[int, list[dict[str, Any]]]  # pid -> device columns
    events: list[dict[str, Any]]  # id, pid, name, day, props, session
    first_day: dict[int, int]  # pid -> first day with any event
    by_pid: dict[int, list[dict[str, Any]]]

    def __repr__(self) -> str:  # hypothesis prints the test's arguments
        return f"Rows({len(self.profiles)} profiles, {len(self.events)} events)"


def read_rows(app: SandboxApp) -> Rows:
    conn = app.store().conn
    sessions = {sid: json.loads(data) for sid, data in conn.execute("SELECT sid, data FROM sessions")}
    profiles = {
        pid: {"email": email, "phone": phone, "data": json.loads(data), "lat": lat, "lon": lon}
        for pid, email, phone, data, lat, lon in conn.execute("SELECT pid, email, phone, data, lat, lon FROM profiles")
    }
    devices: dict[int, list[dict[str, Any]]] = {pid: [] for pid in profiles}
    cols = (
        "pid",
        "platform",
        "os",
        "os_version",
        "app_version",
        "make",
        "model",
        "browser",
        "device_type",
        "push_token",
    )
    for row in conn.execute(f"SELECT {', '.join(cols)} FROM devices"):
        devices.setdefault(row[0], []).append(dict(zip(cols, row, strict=True)))
    events = [
        {"id": i, "pid": pid, "name": name, "day": day, "props": json.loads(props), "session": sessions.get(sid, {})}
        for i, pid, name, day, props, sid in conn.execute("SELECT id, pid, name, day, props, sid FROM events")
    ]
    first_day: dict[int, int] = {}
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        first_day[e["pid"]] = min(first_day.get(e["pid"], e["day"]), e["day"])
        by_pid.setdefault(e["pid"], []).append(e)
    return Rows(profiles, devices, events, first_day, by_pid)


# ---- brute force ------------------------------------------------------------------------------------------------


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def json_match(obj: dict[str, Any], f: dict[str, Any]) -> bool:
    op = {"does_not_contain": "not_contains", "does_not_exist": "not_exists"}.get(f.get("operator", "equals"))
    op = op or f.get("operator", "equals")
    v = obj.get(f["name"])
    if op in ("exists", "not_exists"):
        return (v is not None) == (op == "exists")
    if op in ("equals", "not_equals"):
        hit = False
        for want in _listed(f["value"]):
            flag = want if isinstance(want, bool) else {"true": True, "false": False}.get(str(want).lower())
            if isinstance(v, bool):
                hit |= flag is not None and v == flag
            elif isinstance(v, str):
                hit |= isinstance(want, str) and v == want
            elif _is_num(v):
                hit |= _as_number(want) == v
        return hit if op == "equals" else not hit
    if op in ("contains", "not_contains"):
        hit = isinstance(v, str) and any(str(n).lower() in v.lower() for n in _listed(f["value"]))
        return hit if op == "contains" else not hit
    if not _is_num(v) or v is None:
        return False
    if op == "between":
        low, high = f["value"]
        return bool(low <= v <= high)
    bound = _as_number(f["value"])
    assert bound is not None
    return {"greater_than": v > bound, "less_than": v < bound, "greater_than_equals": v >= bound}.get(op, v <= bound)


def device_match(device: dict[str, Any], column: str, op: str, value: Any) -> bool:
    v = device[column]
    if op == "exists":
        return v is not None
    if v is None:
        return False
    wants = [str(w).lower() for w in _listed(value)]
    if column == "platform":
        wants = [{"androidapp": "android", "iosapp": "ios", "webapp": "web"}.get(w, w) for w in wants]
    return v.lower() in wants if op == "equals" else any(w in v.lower() for w in wants)


TECH = {"Platform": "platform", "Device": "device_type", "Make": "make", "Browser": "browser", "OS": "os",
        "App Version": "app_version", "OS Version": "os_version"}  # fmt: skip


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def profile_match(rows: Rows, pid: int, cpp: dict[str, Any]) -> bool:
    p, data = rows.profiles[pid], rows.profiles[pid]["data"]
    devices = rows.devices.get(pid, [])
    for f in cpp.get("profile_fields", []):
        if not json_match(data, f):
            return False
    for f in cpp.get("demographics", []):
        if f["name"] == "Gender":
            wants = [{"male": "M", "female": "F"}.get(str(w).lower(), w) for w in _listed(f["value"])]
            hit = data.get("Gender") in wants
            if hit != (f.get("operator", "equals") == "equals"):
                return False
        elif f["name"] == "Education":
            hit = str(data.get("Education", "")).lower() in [w.lower() for w in _listed(f["value"])]
            if hit != (f.get("operator", "equals") == "equals"):
                return False
        elif not json_match(data, f):
            return False
    for group in ("technographics", "app_fields"):
        for f in cpp.get(group, []):
            op = f.get("operator", "equals")
            positive = {"not_equals": "equals", "does_not_contain": "contains"}.get(op, op)
            hit = any(device_match(d, TECH[f["name"]], positive, f.get("value")) for d in devices)
            if hit != (positive == op):
                return False
    for f in cpp.get("reachability", []):
        token = any(d["push_token"] is not None for d in devices)
        have = {
            "has_token": token,
            "has_email": p["email"] is not None,
            "push_subscribable": token and data.get("MSG-push") is not False,
            "email_subscribable": p["email"] is not None and data.get("MSG-email") is not False,
            "sms_subscribable": p["phone"] is not None and data.get("MSG-sms") is not False,
        }[f["name"]]
        if have != (f["value"] == "True"):
            return False
    if "geo_fields" in cpp:
        keys = ("Country", "State", "City")
        if not any(
            all(str(data.get(k, "")).lower() == want.lower() for k, want in zip(keys, entry, strict=False))
            for entry in cpp["geo_fields"]
        ):
            return False
    radius = cpp.get("geo_radius")
    return not radius or (
        p["lat"] is not None and any(haversine(p["lat"], p["lon"], a, b) <= km for a, b, km in radius)
    )


def day_int(d: dt.date) -> int:
    return int(d.strftime("%Y%m%d"))


def event_match(rows: Rows, e: dict[str, Any], q: dict[str, Any]) -> bool:
    if e["name"] != q["event_name"] or not q["from"] <= e["day"] <= q["to"]:
        return False
    if not all(json_match(e["props"], f) for f in q.get("event_properties", [])):
        return False
    for f in q.get("session_properties", []):
        if f["name"] == "first_time":
            if (e["day"] == rows.first_day[e["pid"]]) != (f["value"] == "True"):
                return False
        elif not json_match(e["session"], f):
            return False
    return True


def block_count(rows: Rows, pid: int, block: dict[str, Any]) -> int:
    return sum(
        1
        for e in rows.by_pid.get(pid, [])
        if e["name"] == block["event_name"]
        and block["from"] <= e["day"] <= block["to"]
        and all(json_match(e["props"], f) for f in block.get("event_properties", []))
    )


def occurs(count: int, spec: dict[str, Any]) -> bool:
    if "operator" not in spec:
        return count >= 1
    op, v = spec["operator"], spec["value"]
    if op == "between":
        return bool(v[0] <= count <= v[1])
    return {"equals": count == v, "greater_than": count > v, "less_than": count < v}[op]


def advanced_match(rows: Rows, pid: int, aq: dict[str, Any]) -> bool:
    if not all(occurs(block_count(rows, pid, b), b) for b in aq.get("did_all", [])):
        return False
    if any(occurs(block_count(rows, pid, b), b) for b in aq.get("did_none", [])):
        return False
    if "did_any" in aq:
        spec = aq["did_any"]
        counts = [block_count(rows, pid, b) for b in spec["any_events"]]
        if "operator" in spec:
            return occurs(sum(counts), spec)
        return any(occurs(c, b) for c, b in zip(counts, spec["any_events"], strict=True))
    return True


def passes(rows: Rows, pid: int, q: dict[str, Any]) -> bool:
    """The profile part of a query: common profile properties and the advanced query."""
    cpp, aq = q.get("common_profile_properties", {}), q.get("advanced_query", {})
    return profile_match(rows, pid, cpp) and advanced_match(rows, pid, aq)


def people(rows: Rows, q: dict[str, Any]) -> set[int]:
    if "event_name" in q:
        base = {e["pid"] for e in rows.events if event_match(rows, e, q)}
    else:  # "defaults to all events over the past 365 days"
        since = day_int(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=365))
        base = {pid for pid, evs in rows.by_pid.items() if any(e["day"] >= since for e in evs)}
    return {pid for pid in base if passes(rows, pid, q)}


def matching_events(rows: Rows, q: dict[str, Any]) -> list[int]:
    return sorted(e["id"] for e in rows.events if event_match(rows, e, q) and passes(rows, e["pid"], q))


# ---- strategies -------------------------------------------------------------------------------------------------


def days() -> st.SearchStrategy[tuple[int, int]]:
    # Mostly wide ranges (narrow ones select nobody once AND-ed with other filters), sometimes a single day.
    wide = st.tuples(st.integers(0, 60), st.integers(10, 31)).map(lambda o: (o[0], o[0] + o[1]))
    offsets = st.one_of(wide, wide, wide, st.integers(0, 91).map(lambda o: (o, o)))
    return offsets.map(
        lambda o: (day_int(FIRST_DAY + dt.timedelta(days=o[0])), day_int(FIRST_DAY + dt.timedelta(o[1])))
    )


CATEGORIES = ["Electronics", "Footwear", "Apparel", "Books", "Home"]


def _f(name: str, op: str | None, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A filter ``{name, operator, value}`` (no operator: the default, equals)."""
    return values.map(lambda v: {"name": name, "value": v} | ({"operator": op} if op else {}))


PRODUCT_FILTERS = [
    _f("Category", "equals", st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3)),
    _f("Category", None, st.sampled_from(CATEGORIES)),
    _f("Category", "not_equals", st.sampled_from(CATEGORIES)),
    _f("Price", "greater_than", st.sampled_from([20, 45.5, 100])),
    _f("Price", "between", st.tuples(st.integers(0, 200), st.integers(0, 200)).map(sorted)),
    _f("Product Name", "contains", st.sampled_from(["shoe", "WATCH", ["lamp", "mat"]])),
]
AMOUNT = [
    _f("Amount", "less_than", st.sampled_from([50, 150, "150"])),
    _f("Amount", "greater_than_equals", st.just(100)),
]
EXISTENCE = st.sampled_from(["exists", "does_not_exist"]).map(lambda op: {"name": "Product Name", "operator": op})
EVENT_FILTERS = {  # per event: filters on the properties it has, and one that may not apply
    "App Launched": st.one_of(EXISTENCE),
    "Product Viewed": st.one_of(*PRODUCT_FILTERS, EXISTENCE),
    "Added To Cart": st.one_of(*PRODUCT_FILTERS, EXISTENCE),
    "Charged": st.one_of(*AMOUNT, _f("Payment mode", "does_not_contain", st.sampled_from(["Card", "upi"])), EXISTENCE),
    "Cart Abandoned": st.one_of(*AMOUNT, EXISTENCE),
    "Searched": st.one_of(_f("Query", None, st.sampled_from(["shoes", "sale", ["gift", "yoga"]])), EXISTENCE),
}
SESSION_FILTERS = st.one_of(
    st.builds(
        lambda v: {"name": "session_source", "value": v}, st.sampled_from(["Direct", "Search", ["Social", "Email"]])
    ),
    st.builds(lambda v: {"name": "utm_source", "operator": "contains", "value": v}, st.sampled_from(["goo", "face"])),
    st.builds(lambda v: {"name": "utm_medium", "operator": v}, st.sampled_from(["exists", "does_not_exist"])),
    st.builds(lambda v: {"name": "first_time", "value": v}, st.sampled_from(["True", "False"])),
)
CPP_GROUPS: dict[str, st.SearchStrategy[Any]] = {
    "profile_fields": st.lists(
        st.one_of(
            st.builds(
                lambda v: {"name": "Customer Type", "operator": "equals", "value": v},
                st.sampled_from(["Gold", ["Silver", "Platinum"]]),
            ),
            st.builds(
                lambda v: {"name": "Customer Type", "operator": "not_equals", "value": v},
                st.sampled_from(["Gold", "Silver"]),
            ),
            st.builds(lambda v: {"name": "MSG-email", "value": v}, st.sampled_from(["True", "False"])),
            st.builds(lambda v: {"name": "MSG-whatsapp", "operator": v}, st.sampled_from(["exists", "does_not_exist"])),
        ),
        min_size=1,
        max_size=2,
    ),
    "demographics": st.lists(
        st.one_of(
            st.builds(lambda v: {"name": "Gender", "value": v}, st.sampled_from(["Female", "Male", "M"])),
            st.builds(
                lambda v: {"name": "Education", "operator": "equals", "value": v},
                st.sampled_from(["college", ["School", "Graduate"]]),
            ),
            st.builds(lambda v: {"name": "Age", "operator": "less_than", "value": v}, st.integers(18, 70)),
            st.builds(lambda a: {"name": "Age", "operator": "between", "value": [a, a + 15]}, st.integers(18, 60)),
        ),
        min_size=1,
        max_size=2,
    ),
    "technographics": st.lists(
        st.one_of(
            st.builds(lambda v: {"name": "Platform", "value": v}, st.sampled_from(["AndroidApp", "iOS", "Web"])),
            st.builds(
                lambda v: {"name": "Device", "operator": "equals", "value": v},
                st.sampled_from([["Mobile", "Tablet"], "Desktop"]),
            ),
            st.builds(lambda v: {"name": "Browser", "operator": "not_equals", "value": v}, st.sampled_from(["chrome"])),
        ),
        min_size=1,
        max_size=2,
    ),
    "app_fields": st.lists(
        st.one_of(
            st.builds(
                lambda v: {"name": "Make", "operator": "contains", "value": v}, st.sampled_from(["Apple", "sam"])
            ),
            st.builds(lambda v: {"name": "App Version", "value": v}, st.sampled_from(["5.2.0", "5.3.1"])),
        ),
        min_size=1,
        max_size=1,
    ),
    "reachability": st.lists(
        st.builds(
            lambda n, v: {"name": n, "value": v},
            st.sampled_from(["has_token", "has_email", "push_subscribable", "email_subscribable", "sms_subscribable"]),
            st.sampled_from(["True", "False"]),
        ),
        min_size=1,
        max_size=2,
    ),
    "geo_fields": st.lists(
        st.sampled_from(list(CITIES)).flatmap(lambda c: st.sampled_from([[c[0]], list(c), [c[0].upper(), c[1]]])),
        min_size=1,
        max_size=2,
    ),
    "geo_radius": st.lists(
        st.builds(
            lambda c, km: [CITIES[c][0], CITIES[c][1], km],
            st.sampled_from(list(CITIES)),
            st.sampled_from([5, 15, 40]),
        ),
        min_size=1,
        max_size=2,
    ),
}
CPP = st.lists(st.sampled_from(sorted(CPP_GROUPS)), min_size=1, max_size=2, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: CPP_GROUPS[k] for k in keys})
)


@st.composite
def block(draw: st.DrawFn, occurrences: bool = True) -> dict[str, Any]:
    start, end = draw(days())
    name = draw(st.sampled_from(EVENT_NAMES[:4]))
    out: dict[str, Any] = {"event_name": name, "from": start, "to": end}
    if draw(st.booleans()):
        out["event_properties"] = [draw(EVENT_FILTERS[name])]
    if occurrences and draw(st.booleans()):
        out.update(draw(st.sampled_from([
            {"operator": "greater_than", "value": 2}, {"operator": "equals", "value": 1},
            {"operator": "less_than", "value": 3}, {"operator": "between", "value": [2, 5]},
        ])))  # fmt: skip
    return out


ADVANCED_KEYS: dict[str, st.SearchStrategy[Any]] = {
    "did_all": st.lists(block(), min_size=1, max_size=2),
    "did_none": st.lists(block(), min_size=1, max_size=2),
    "did_any": st.one_of(
        st.builds(lambda b: {"any_events": b}, st.lists(block(), min_size=1, max_size=2)),
        st.builds(
            lambda b, v: {"any_events": b, "operator": "greater_than", "value": v},
            st.lists(block(False), min_size=1, max_size=2),
            st.integers(0, 6),
        ),
    ),
}
ADVANCED = st.lists(st.sampled_from(sorted(ADVANCED_KEYS)), min_size=1, max_size=2, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: ADVANCED_KEYS[k] for k in keys})
)


@st.composite
def queries(draw: st.DrawFn, with_event: bool) -> dict[str, Any]:
    q: dict[str, Any] = {}
    if with_event:
        start, end = draw(days())
        name = draw(st.sampled_from(EVENT_NAMES))
        q.update(event_name=name, **{"from": start, "to": end})
        if draw(st.booleans()):
            q["event_properties"] = draw(st.lists(EVENT_FILTERS[name], min_size=1, max_size=2))
        if draw(st.integers(0, 2)) == 0:
            q["session_properties"] = [draw(SESSION_FILTERS)]
    if draw(st.integers(0, 2)) == 0 or not with_event:
        q["common_profile_properties"] = draw(CPP)
    if draw(st.integers(0, 2)) == 0 or ("event_name" not in q and draw(st.booleans())):
        q["advanced_query"] = draw(ADVANCED)
    return q


# ---- the app ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxApp]:
    config = SandboxConfig(
        anchor=ANCHOR,
        cache_dir=str(tmp_path_factory.mktemp("sandbox-cache")),
        seed_profiles=300,
        seed_events=12_000,
        count_partial_polls=0,
    )
    app = create_app(config)
    yield app
    app.close()


@pytest.fixture(scope="module")
def rows(app: SandboxApp) -> Rows:
    return read_rows(app)


def call(app: SandboxApp, requests: list[tuple[str, str, dict[str, Any] | None]], status: int = 200) -> list[Any]:
    async def run() -> list[Any]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://s.test", headers=AUTH
        ) as c:
            out = []
            for method, path, body in requests:
                r = await c.request(method, path, json=body)
                assert r.status_code == status, (path, body, r.text)
                out.append(r.json())
            return out

    return anyio.run(run)


def export(app: SandboxApp, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    (created,) = call(app, [("POST", f"{path}?batch_size=97", query)])
    cursor, records = created["cursor"], []
    while cursor:
        (page,) = call(app, [("GET", f"{path}?cursor={cursor}", None)])
        records.extend(page.get("records", []))
        cursor = page.get("next_cursor")
    return records


def estimates(app: SandboxApp, where: dict[str, Any]) -> tuple[int, int]:
    base = {"name": "p", "where": where, "when": "now", "estimate_only": True}
    email_content = {"subject": "s", "body": "b", "sender_name": "n"}
    everyone, email = call(app, [
        ("POST", "/1/targets/create.json", {**base, "target_mode": "webhook", "content": {}}),
        ("POST", "/1/targets/create.json", {**base, "target_mode": "email", "content": email_content}),
    ])  # fmt: skip
    return everyone["estimates"]["web"], email["estimates"]["web"]


@SETTINGS
@given(q=queries(with_event=True))
def test_event_queries_agree_with_brute_force(app: SandboxApp, rows: Rows, q: dict[str, Any]) -> None:
    expected = matching_events(rows, q)
    trends_body = {**q, "groups": {"d": {"trend_type": "daily"}}}
    count, trends = call(app, [("POST", "/1/counts/events.json", q), ("POST", "/1/counts/trends.json", trends_body)])
    assert count["count"] == len(expected), q
    assert sum(trends["d"].values()) == len(expected)
    records = export(app, "/1/events.json", q)
    assert len(records) == len(expected)
    by_id = {e["id"]: e for e in rows.events}
    assert Counter(r["profile"]["id"] for r in records) == Counter(by_id[i]["pid"] for i in expected)


@SETTINGS
@given(q=st.one_of(queries(with_event=True), queries(with_event=False)))
def test_people_queries_agree_with_brute_force(app: SandboxApp, rows: Rows, q: dict[str, Any]) -> None:
    expected = people(rows, q)
    (count,) = call(app, [("POST", "/1/counts/profiles.json", q)])
    assert count["count"] == len(expected), q
    records = export(app, "/1/profiles.json", q)
    identities = {f"user-{pid:05d}" for pid in expected}
    assert sorted(r["identity"] for r in records) == sorted(identities)
    everyone, email = estimates(app, q)
    assert everyone == len(expected)
    reachable = {
        pid
        for pid in expected
        if rows.profiles[pid]["email"] and rows.profiles[pid]["data"].get("MSG-email") is not False
    }
    assert email == len(reachable)


def test_filters_select_different_sets(app: SandboxApp, rows: Rows) -> None:
    """The demo data makes did_all / did_any / did_none meaningful: each picks a proper, non-empty subset."""
    charged = {"event_name": "Charged", "from": day_int(FIRST_DAY), "to": day_int(ANCHOR)}
    sizes = {
        key: call(app, [("POST", "/1/counts/profiles.json", {"advanced_query": value})])[0]["count"]
        for key, value in {
            "all": {"did_all": [charged, {**charged, "event_name": "Searched"}]},
            "any": {"did_any": {"any_events": [charged, {**charged, "event_name": "Cart Abandoned"}]}},
            "none": {"did_none": [charged]},
            "twice": {"did_all": [{**charged, "operator": "greater_than", "value": 1}]},
        }.items()
    }
    total = len(rows.profiles)
    assert all(0 < n < total for n in sizes.values()), sizes
    assert len(set(sizes.values())) == len(sizes), sizes


def test_top_values_of_profile_and_device_properties(app: SandboxApp, rows: Rows) -> None:
    """counts/top.json groups by demographics, geo, reachability and device fields: counts per value match the rows."""
    q = {"event_name": "App Launched", "from": day_int(FIRST_DAY), "to": day_int(ANCHOR)}
    groups = {
        "gender": {"property_type": "demographics", "name": "Gender", "top_n": 5},
        "country": {"property_type": "geo_fields", "name": "country", "top_n": 20},
        "email": {"property_type": "reachability", "name": "has_email"},
        "platform": {"property_type": "technographics", "name": "Platform"},
    }
    (top,) = call(app, [("POST", "/1/counts/top.json", {**q, "groups": groups})])
    events = [e for e in rows.events if event_match(rows, e, q)]
    gender = Counter(rows.profiles[e["pid"]]["data"]["Gender"] for e in events)
    assert top["gender"] == {"STR": dict(gender)}
    assert top["country"] == {"STR": dict(Counter(rows.profiles[e["pid"]]["data"]["Country"] for e in events))}
    has_email = Counter("True" if rows.profiles[e["pid"]]["email"] else "False" for e in events)
    assert top["email"] == {"STR": dict(has_email)}
    assert sum(top["platform"]["STR"].values()) == len(events)
    unknown = {**q, "groups": {"x": {"property_type": "demographics", "name": "Shoe size"}}}
    (error,) = call(app, [("POST", "/1/counts/top.json", unknown)], status=400)
    assert error["status"] == "fail" and "unknown demographics name" in error["error"]


def test_base_query_rules(app: SandboxApp, rows: Rows) -> None:
    """The base query may be left out only on people endpoints with profile or advanced filters; where {} = everyone."""
    reach = {"common_profile_properties": {"reachability": [{"name": "has_email", "value": "True"}]}}
    for path, body in (("/1/counts/profiles.json", {}), ("/1/profiles.json", {}), ("/1/events.json", reach)):
        (error,) = call(app, [("POST", path, body)], status=400)
        assert error == {"status": "fail", "error": "'event_name' is mandatory", "code": 400}
    (count,) = call(app, [("POST", "/1/counts/profiles.json", reach)])
    assert count["count"] == len(people(rows, reach)) > 0
    everyone, _ = estimates(app, {})
    assert everyone == len(rows.profiles)
