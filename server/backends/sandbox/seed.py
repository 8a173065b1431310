"""Deterministic demo data for the sandbox: an e-commerce app's profiles, 90 days of events and its campaigns.

Everything derives from one seeded RNG keyed by the anchor day and the sizes, so the same anchor always yields the
same database. The data ends at the anchor day's midnight UTC ("now" for the demo account): today's activity comes
only from uploads. Generated databases are cached under ``$XDG_CACHE_HOME/clevertap-mcp/`` (written atomically).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config import DEFAULT_SEED_EVENTS, DEFAULT_SEED_PROFILES
from .schema import DATA_VERSION, INDEXES, SEED_VERSION, TABLES

DAYS = 90
T = TypeVar("T")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Aarav Aditi Alex Amara Ana Ben Carlos Chen Chloe Daniel Diya Elena Emma Ethan Fatima Felix Grace Hana Hugo Ishaan "
    "Isla Jack Jin Julia Kai Kavya Leo Lina Lucas Maya Mia Noah Nora Omar Priya Rahul Rosa Sara Sofia Tara Tom Uma "
    "Vera Wei Yara Yusuf Zoe"
)
LAST_NAMES = _words(
    "Agarwal Brown Costa Das Evans Fischer Garcia Gupta Hoffmann Ito Jones Khan Kim Lopez Martin Mehta Nakamura "
    "Nguyen Okafor Patel Rossi Santos Schmidt Shah Silva Singh Smith Tanaka Taylor Wang Williams Wilson Yamada"
)
CITIES = (
    ("Mumbai", "Maharashtra", "India"),
    ("Bengaluru", "Karnataka", "India"),
    ("Delhi", "Delhi", "India"),
    ("Singapore", "Singapore", "Singapore"),
    ("London", "England", "United Kingdom"),
    ("Berlin", "Berlin", "Germany"),
    ("New York", "New York", "United States"),
    ("San Francisco", "California", "United States"),
    ("Dubai", "Dubai", "United Arab Emirates"),
    ("Jakarta", "Jakarta", "Indonesia"),
)
# City centres (latitude, longitude) for geo_radius; each profile sits within about 25 km of its city's centre.
CITY_CENTRES = {
    "Mumbai": (19.076, 72.8777),
    "Bengaluru": (12.9716, 77.5946),
    "Delhi": (28.7041, 77.1025),
    "Singapore": (1.3521, 103.8198),
    "London": (51.5072, -0.1276),
    "Berlin": (52.52, 13.405),
    "New York": (40.7128, -74.006),
    "San Francisco": (37.7749, -122.4194),
    "Dubai": (25.2048, 55.2708),
    "Jakarta": (-6.2088, 106.8456),
}
EDUCATION = (("School", 25), ("College", 45), ("Graduate", 30))
PRODUCTS = (
    ("Wireless Earbuds", "Electronics", 59.99),
    ("Smart Watch", "Electronics", 199.0),
    ("Bluetooth Speaker", "Electronics", 45.5),
    ("Running Shoes", "Footwear", 89.0),
    ("Leather Sandals", "Footwear", 39.0),
    ("Denim Jacket", "Apparel", 74.0),
    ("Cotton T-Shirt", "Apparel", 15.0),
    ("Yoga Mat", "Sports", 25.0),
    ("Coffee Maker", "Home", 120.0),
    ("Desk Lamp", "Home", 32.0),
    ("Backpack", "Accessories", 55.0),
    ("Sunglasses", "Accessories", 68.0),
    ("Face Serum", "Beauty", 28.0),
    ("Novel: The Long Road", "Books", 12.99),
    ("Cookbook: Fast Meals", "Books", 22.5),
)
SEARCH_TERMS = ("shoes", "earbuds", "watch", "jacket", "gift", "sale", "coffee", "yoga", "backpack", "serum")
PAYMENT_MODES = ("Credit Card", "Debit Card", "UPI", "PayPal", "Cash on Delivery", "Wallet")
CUSTOMER_TYPES = (("Silver", 60), ("Gold", 30), ("Platinum", 10))
SOURCES = (("Direct", 50), ("Search", 20), ("Social", 12), ("Email", 8), ("Others", 10))
ANDROID = (("Samsung", "SM-S911B"), ("Google", "Pixel 8"), ("Xiaomi", "Redmi Note 12"), ("OnePlus", "CPH2449"))
IOS = (("Apple", "iPhone14,2"), ("Apple", "iPhone15,3"), ("Apple", "iPhone13,4"))
WEB_OS = (("windows", 55), ("mac", 35), ("linux", 10))
BROWSERS = (("chrome", 65), ("safari", 20), ("firefox", 10), ("ie", 5))
CAMPAIGN_NAMES = (
    "Weekend Flash Sale",
    "Cart Reminder",
    "New Arrivals",
    "Win-back: We Miss You",
    "Festive Offers",
    "Loyalty Points Expiring",
    "Price Drop Alert",
    "Welcome Series",
    "Back in Stock",
    "App Update Available",
)


def anchor_epoch(anchor: dt.date) -> int:
    """Midnight UTC at the start of ``anchor``: the end of the demo data."""
    return int(dt.datetime(anchor.year, anchor.month, anchor.day, tzinfo=dt.timezone.utc).timestamp())


def cache_path(anchor: dt.date, profiles: int, events: int, cache_dir: str | None = None) -> Path:
    from server.config import user_dir  # the platform's cache folder: a convention, not a setting

    base = Path(cache_dir) if cache_dir else user_dir("cache")
    size = "" if (profiles, events) == (DEFAULT_SEED_PROFILES, DEFAULT_SEED_EVENTS) else f"-{profiles}p-{events}e"
    return base / "clevertap-mcp" / f"sandbox-seed-v{SEED_VERSION}-{anchor:%Y%m%d}{size}.sqlite"


def ensure_seed(anchor: dt.date, profiles: int, events: int, cache_dir: str | None = None) -> Path:
    """The cached seed database for these parameters, generated (atomically) when missing."""
    path = cache_path(anchor, profiles, events, cache_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Processes starting together (replicas, a stdio server beside `sandbox serve`) wait for one generation
    # instead of each generating the same file.
    with _exclusive(path.with_name(path.name + ".lock")):
        if path.exists():
            return path
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            generate(tmp, anchor, profiles, events)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    _prune(path)
    return path


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock on ``lock_path`` where the platform has ``flock``; no lock elsewhere."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent generations are wasteful but safe (atomic replace)
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(keep: Path) -> None:
    """Drop seed files of this version that are more than two days old (stale anchors)."""
    cutoff = time.time() - 2 * 86400
    for other in [*keep.parent.glob("sandbox-seed-v*.sqlite"), *keep.parent.glob("sandbox-seed-v*.sqlite.lock")]:
        with contextlib.suppress(OSError):
            if other not in (keep, keep.with_name(keep.name + ".lock")) and other.stat().st_mtime < cutoff:
                other.unlink()


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


# One encoder for the whole seed: json.dumps with options builds a new encoder per call.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _draws(rng: random.Random) -> tuple[Callable[[int], int], Callable[[Sequence[T]], T]]:
    """``rng.randrange(n)`` and ``rng.choice(seq)`` that draw exactly what those draw (the same ``getrandbits``
    calls as ``Random._randbelow``), without their layers of argument checks: the seed makes a million draws."""
    getrandbits = rng.getrandbits

    def below(n: int) -> int:
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r

    def pick(seq: Sequence[T]) -> T:
        return seq[below(len(seq))]

    return below, pick


def generate(path: str, anchor: dt.date, n_profiles: int, n_events: int) -> None:
    """Write a complete demo database to ``path`` (which must be a new or empty file)."""
    key = f"{anchor.isoformat()}-{n_profiles}-{n_events}"
    rng = random.Random(f"clevertap-sandbox-v{DATA_VERSION}-{key}")
    # Fields added after DATA_VERSION 2 draw from their own RNG, so the rows above them stay as they were.
    extra = random.Random(f"clevertap-sandbox-extra-v{SEED_VERSION}-{key}")
    end = anchor_epoch(anchor)
    start = end - DAYS * 86400
    profiles, devices, weights, created, device_ids = _profiles(rng, extra, n_profiles, start, end)
    sessions = _sessions_json(rng)
    events = _events(rng, n_events, start, end, weights, created, device_ids, len(sessions))
    campaigns = _campaigns(rng, anchor, end)

    conn = sqlite3.connect(path)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;")
        conn.executescript(TABLES)
        with conn:
            conn.executemany("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?)", profiles)
            conn.executemany("INSERT INTO devices VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", devices)
            conn.executemany("INSERT INTO sessions VALUES (?,?)", [(0, "{}"), *enumerate(sessions, start=1)])
            conn.executemany("INSERT INTO events (pid,did,name,ts,day,props,sid) VALUES (?,?,?,?,?,?,?)", events)
            conn.executemany(
                "INSERT INTO campaigns (id,name,target_mode,status,scheduled_on,created_ts,sent,viewed,clicked,"
                "delivery,labels,devices,payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                campaigns,
            )
            meta = {"seed_version": SEED_VERSION, "anchor": anchor.isoformat(), "profiles": n_profiles}
            conn.executemany("INSERT INTO meta VALUES (?,?)", [(k, str(v)) for k, v in meta.items()])
        conn.executescript(INDEXES)
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


def _profiles(
    rng: random.Random, extra: random.Random, n: int, start: int, end: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[float], list[int], list[list[int]]]:
    below, pick = _draws(rng)
    profiles: list[tuple[Any, ...]] = []
    devices: list[tuple[Any, ...]] = []
    weights: list[float] = []
    created: list[int] = []
    device_ids: list[list[int]] = []  # per profile: its devices' dids
    for i in range(1, n + 1):
        first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
        name = f"{first} {last}"
        email = f"{first}.{last}{i}@example.com".lower() if rng.random() < 0.95 else None
        phone = f"+1{2012000000 + below(7888000000)}" if rng.random() < 0.85 else None
        city, state, country = pick(CITIES)
        data: dict[str, Any] = {"Name": name}
        if email:
            data["Email"] = email
        if phone:
            data["Phone"] = phone
        data.update(
            {
                "Gender": pick(("M", "F")),
                "Age": 18 + below(53),
                "City": city,
                "State": state,
                "Country": country,
                "Customer Type": _weighted(rng, CUSTOMER_TYPES),
                "MSG-email": rng.random() < 0.9,
                "MSG-sms": rng.random() < 0.8,
                "MSG-push": rng.random() < 0.85,
            }
        )
        data["Education"] = _weighted(extra, EDUCATION)
        data["Married"] = "Y" if extra.random() < 0.45 else "N"
        if extra.random() < 0.3:
            data["MSG-whatsapp"] = extra.random() < 0.7
        centre_lat, centre_lon = CITY_CENTRES[city]
        lat = round(centre_lat + extra.uniform(-0.2, 0.2), 5)
        lon = round(centre_lon + extra.uniform(-0.2, 0.2), 5)
        ts = start - (1 + below(365)) * 86400 if rng.random() < 0.4 else start + below(end - 3600 - start + 1)
        profiles.append((i, f"user-{i:05d}", email, name, phone, _dumps(data), ts, lat, lon))
        created.append(ts)
        weights.append(min(rng.paretovariate(1.3), 40.0))
        mine: list[int] = []
        platforms = [_weighted(rng, (("Android", 45), ("iOS", 35), ("Web", 20)))]
        if rng.random() < 0.25:
            platforms.append("Web" if platforms[0] != "Web" else "Android")
        for platform in platforms:
            devices.append((len(devices) + 1, _hex_id(rng), i, *_device(rng, platform)))
            mine.append(len(devices))
        device_ids.append(mine)
    return profiles, devices, weights, created, device_ids


def _device(rng: random.Random, platform: str) -> tuple[Any, ...]:
    """The device columns after (did, object_id, pid): platform, os, os_version, app_version, make, model, browser,
    device_type, push_token, token_type."""
    _, pick = _draws(rng)
    if platform == "Android":
        make, model = pick(ANDROID)
        token = f"fcm:{_hex_id(rng)}" if rng.random() < 0.8 else None
        versions = pick(("12", "13", "14")), pick(("5.2.0", "5.3.1"))
        return (platform, "android", *versions, make, model, None, "mobile", token, "fcm" if token else None)
    if platform == "iOS":
        make, model = pick(IOS)
        token = _hex_id(rng) + _hex_id(rng) if rng.random() < 0.7 else None
        kind = "tablet" if rng.random() < 0.05 else "mobile"
        versions = pick(("16.7", "17.4", "17.5")), pick(("5.2.0", "5.3.1"))
        return (platform, "ios", *versions, make, model, None, kind, token, "apns" if token else None)
    token = f"https://fcm.googleapis.com/fcm/send/{_hex_id(rng)}" if rng.random() < 0.2 else None
    kind = "mobile" if rng.random() < 0.2 else "desktop"
    os_name, browser = _weighted(rng, WEB_OS), _weighted(rng, BROWSERS)
    return (platform, os_name, None, None, None, None, browser, kind, token, "chrome" if token else None)


def _sessions_json(rng: random.Random) -> list[str]:
    _, pick = _draws(rng)
    out: list[str] = []
    for source, weight in SOURCES:
        for k in range(max(1, weight // 5)):
            session: dict[str, str] = {"session_source": source}
            if source != "Direct":
                session.update(
                    utm_source=pick(("google", "facebook", "instagram", "newsletter", "partner")),
                    utm_medium=pick(("cpc", "social", "email", "referral")),
                    utm_campaign=f"{CAMPAIGN_NAMES[k % len(CAMPAIGN_NAMES)].lower().replace(' ', '_')}",
                )
            out.append(_dumps(session))
    return out


def _events(
    rng: random.Random,
    n_events: int,
    start: int,
    end: int,
    weights: list[float],
    created: list[int],
    device_ids: list[list[int]],
    n_sessions: int,
) -> list[tuple[Any, ...]]:
    below, pick = _draws(rng)
    n_profiles = len(weights)
    burst_size = max(3, n_profiles // 60)
    target = max(0, n_events - 2 * burst_size)
    rows: list[tuple[int, int, str, int, str, int]] = []
    random_ = rng.random
    uninstall_rate = 0.03
    # The few distinct property objects, encoded once (most of seeding's time was json.dumps).
    viewed = {p: _dumps({"Product Name": p[0], "Category": p[1], "Price": p[2], "Currency": "USD"}) for p in PRODUCTS}
    carted = {p: _dumps({"Product Name": p[0], "Category": p[1], "Price": p[2], "Quantity": 1}) for p in PRODUCTS}
    searched = {term: _dumps({"Query": term}) for term in SEARCH_TERMS}
    while len(rows) < target:
        for idx in rng.choices(range(n_profiles), weights=weights, k=2000):
            pid = idx + 1
            lo = max(created[idx], start)
            ts = lo + int(random_() * (end - 1800 - lo)) if end - 1800 > lo else end - 1800
            oid = pick(device_ids[idx])
            session = 1 + below(n_sessions)
            rows.append((pid, oid, "App Launched", ts, "{}", session))
            cart: list[tuple[str, str, float]] = []
            if random_() < 0.4:
                ts += 5 + below(56)
                rows.append((pid, oid, "Searched", ts, searched[pick(SEARCH_TERMS)], session))
            views = 0 if random_() < 0.15 else min(int(rng.expovariate(0.5)) + 1, 8)
            for _ in range(views):
                ts += 10 + below(111)
                product = pick(PRODUCTS)
                rows.append((pid, oid, "Product Viewed", ts, viewed[product], session))
                if random_() < 0.22:
                    ts += 5 + below(56)
                    cart.append(product)
                    rows.append((pid, oid, "Added To Cart", ts, carted[product], session))
            if cart:
                amount = round(sum(p[2] for p in cart), 2)
                if random_() < 0.6:
                    ts += 20 + below(161)
                    props = {"Amount": amount, "Items Count": len(cart), "Currency": "USD"}
                    rows.append((pid, oid, "Checkout Started", ts, _dumps(props), session))
                    if random_() < 0.7:
                        ts += 30 + below(271)
                        items = [{"Product Name": p[0], "Category": p[1], "Quantity": 1, "Price": p[2]} for p in cart]
                        props = {
                            "Amount": amount,
                            "Currency": "USD",
                            "Payment mode": pick(PAYMENT_MODES),
                            "Charged ID": f"ORD-{rng.getrandbits(40):010x}",
                            "Items": items,
                        }
                        rows.append((pid, oid, "Charged", ts, _dumps(props), session))
                        cart = []
                if cart and random_() < 0.5:
                    ts += 600 + below(1101)
                    rows.append(
                        (pid, oid, "Cart Abandoned", ts, _dumps({"Amount": amount, "Items Count": len(cart)}), session)
                    )
            if random_() < uninstall_rate / 20:
                ts += 60 + below(841)
                rows.append((pid, oid, "App Uninstalled", ts, "{}", session))
            if len(rows) >= target:
                break
    del rows[target:]
    # Sessions that started late may run past the end: keep them clear of the live-users window.
    rows = [r if r[3] < end - 400 else (r[0], r[1], r[2], end - 400, r[4], r[5]) for r in rows]
    # Live users for now.json: a burst of launches and views in the last five minutes before the anchor.
    for idx in rng.sample(range(n_profiles), min(burst_size, n_profiles)):
        oid = pick(device_ids[idx])
        ts = end - 30 - below(270)
        session = 1 + below(n_sessions)
        product = pick(PRODUCTS)
        rows.append((idx + 1, oid, "App Launched", ts, "{}", session))
        rows.append((idx + 1, oid, "Product Viewed", min(ts + 5 + below(21), end - 1), viewed[product], session))
    rows.sort(key=lambda r: (r[3], r[0]))
    days = [
        int((dt.datetime.fromtimestamp(start, dt.timezone.utc) + dt.timedelta(days=d)).strftime("%Y%m%d"))
        for d in range(DAYS + 1)
    ]
    return [(pid, oid, name, ts, days[(ts - start) // 86400], props, sess) for pid, oid, name, ts, props, sess in rows]


def _campaigns(rng: random.Random, anchor: dt.date, end: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    used: set[int] = set()
    modes = (("push", 45), ("email", 30), ("sms", 10), ("webpush", 15))
    # Guarantee every state at least once, then fill in by date.
    offsets = list(range(-60, 15, 2))
    forced = {-40: "paused", -30: "stopped", -1: "running", 3: "pending", 5: "scheduled", -20: "completed"}
    for offset in offsets:
        for extra in (0, 1) if rng.random() < 0.3 else (0,):
            at = end + offset * 86400 + rng.randint(8, 20) * 3600 + rng.choice((0, 15, 30, 45)) * 60 + extra * 5400
            if offset in forced and extra == 0:
                status = forced[offset]
            elif offset >= 1:
                status = "scheduled" if rng.random() < 0.8 else "pending"
            elif offset >= -2:
                status = "running"
            else:
                status = _weighted(rng, (("completed", 75), ("stopped", 15), ("paused", 10)))
            mode = _weighted(rng, modes)
            created = at - rng.randint(2, 72) * 3600
            while created in used:
                created += 1
            used.add(created)
            sent = viewed = clicked = 0
            if status in ("completed", "stopped", "running", "paused"):
                sent = rng.randint(300, 4500)
                viewed = int(sent * rng.uniform(0.3, 0.7))
                clicked = int(sent * rng.uniform(0.02, 0.12))
            devices = ["android", "ios"] if mode == "push" else (["web"] if mode == "webpush" else [])
            name = f"{rng.choice(CAMPAIGN_NAMES)} ({mode})"
            scheduled_on = int(dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y%m%d%H%M"))
            delivery = _weighted(rng, (("one_time", 70), ("recurring", 10), ("action", 10), ("api", 10)))
            labels = _dumps(rng.sample(["promo", "retention", "onboarding", "transactional"], k=rng.randint(0, 2)))
            payload = _dumps({"target_mode": mode, "where": {}, "content": {"title": name, "body": "Tap to see more"}})
            devices_json = _dumps(devices)
            row = (created, name, mode, status, scheduled_on, created, sent, viewed, clicked, delivery, labels)
            rows.append((*row, devices_json, payload))
    return rows
