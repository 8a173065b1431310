"""Per-record validation of ``POST /1/upload`` (reference §2), with CleverTap's error codes and message style.

Messages follow ``"<reason>Skipped record number : <k>"`` where the reason ends with its own period (real answers
have no space after it, except the two real 513/525 texts, which are reproduced verbatim).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_RECORDS = 1000
MAX_TOKENS = 100
MAX_EVENT_PROPERTIES = 256
MAX_KEY_CHARS = 120
MAX_VALUE_BYTES = 512
MAX_TS = 10**11  # anything larger is a millisecond (or garbage) timestamp

# System events that uploads may not raise (code 513). "Web Page Viewed" is the real captured case; the others are
# CleverTap's own system events with the same standing. "App Launched" stays allowed.
RESTRICTED_EVENTS = frozenset(
    {
        "Web Page Viewed",
        "App Installed",
        "App Uninstalled",
        "Notification Sent",
        "Notification Viewed",
        "Notification Clicked",
        "Push Impressions",
        "UTM Visited",
        "Session Concluded",
        "Channel Unsubscribed",
    }
)
TOKEN_TYPES = frozenset({"apns", "gcm", "fcm", "wns", "mpns", "chrome"})
IDENTITY_KEYS = ("identity", "objectId", "FBID", "GPID")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+[1-9]\d{5,14}$")
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_\-:.~]{1,64}$")  # "~" and "-" lead real objectIds

REASONS: dict[int, str] = {
    509: "Event name is mandatory.",
    512: "Invalid event structure.",
    513: "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. ",
    514: "Profile data is incorrect. Gender needs to be M/F.",
    515: "Profile data is incorrect. Email is not valid.",
    516: "Profile data is incorrect. Phone number is not valid.",
    517: "Profile data is incorrect. Employed needs to be Y/N.",
    518: "Profile data is incorrect. Education needs to be School/College/Graduate..",  # two dots, as recorded
    519: "Profile data is incorrect. Married needs to be Y/N.",
    520: "Profile data is incorrect. Age is invalid.",
    522: "Event properties limit exceeded.",
    523: "Identity is mandatory. Record needs one of identity, objectId, FBID or GPID.",
    524: "Data is neither event nor profile.",
    525: "Timestamp should be present in the Unix Epoch format. ",
    526: "objectId is invalid.",
    528: "Event is discarded.",
    530: "Invalid objectId.",  # tokens: a missing or malformed objectId
    531: "Invalid token data.",
    532: 'Token "id" is not present.',
    533: 'Token "type" is not present.',
    534: 'Token "type" is not valid for "objectId".',
    535: "Invalid token data. Unsupported token type or missing keys.",
}


def message(code: int, index: int) -> str:
    """The error text of an unprocessed record; ``index`` is 0-based, the text is 1-based."""
    return f"{REASONS[code]}Skipped record number : {index + 1}"


@dataclass(frozen=True)
class Checked:
    """A record that passed validation, reduced to what storage needs."""

    kind: str  # event | profile | token
    id_key: str  # which identity key identifies the user
    id_value: str
    ts: int
    record: dict[str, Any]


def _ts(record: dict[str, Any], now: int) -> int | None:
    if "ts" not in record:
        return now
    ts = record["ts"]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts != ts:
        return None
    if ts <= 0 or ts >= MAX_TS:
        return None
    return int(ts)


def _identity(record: dict[str, Any]) -> tuple[str, Any] | None:
    for key in IDENTITY_KEYS:
        if key in record and record[key] not in (None, ""):
            return key, record[key]
    return None


def _value_too_big(value: Any) -> bool:
    return isinstance(value, str) and len(value.encode()) > MAX_VALUE_BYTES


def _check_profile_data(data: dict[str, Any]) -> int | None:
    if "Gender" in data and data["Gender"] not in ("M", "F"):
        return 514
    if "Email" in data and not (isinstance(data["Email"], str) and _EMAIL.match(data["Email"])):
        return 515
    if "Phone" in data:
        phone = data["Phone"]
        if isinstance(phone, int) and not isinstance(phone, bool):
            phone = "+" + str(phone)
        if not (isinstance(phone, str) and _PHONE.match(phone)):
            return 516
    if "Employed" in data and data["Employed"] not in ("Y", "N"):
        return 517
    if "Education" in data and data["Education"] not in ("School", "College", "Graduate"):
        return 518
    if "Married" in data and data["Married"] not in ("Y", "N"):
        return 519
    if "Age" in data:
        age = data["Age"]
        if isinstance(age, bool) or not isinstance(age, (int, float, str)):
            return 520
        if isinstance(age, str):
            try:
                float(age)
            except ValueError:
                return 520
    return None


def check(record: Any, now: int, discarded: frozenset[str] = frozenset()) -> Checked | int:
    """Validate one upload record: a Checked on success, else the CleverTap error code."""
    if not isinstance(record, dict) or record.get("type") not in ("event", "profile", "token"):
        return 524
    kind = record["type"]
    ts = _ts(record, now)
    if ts is None:
        return 525
    if kind == "token":
        return _check_token(record, ts)
    found = _identity(record)
    if found is None:
        return 523
    key, value = found
    if key == "objectId" and not (isinstance(value, str) and _OBJECT_ID.match(value)):
        return 526
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return 523
    if kind == "event":
        name = record.get("evtName")
        if name in (None, ""):
            return 509
        data = record.get("evtData", {})
        if not isinstance(name, str) or len(name) > MAX_KEY_CHARS or not isinstance(data, dict):
            return 512
        if name in RESTRICTED_EVENTS:
            return 513
        if name in discarded:
            return 528
        if len(data) > MAX_EVENT_PROPERTIES:
            return 522
        if any(len(k) > MAX_KEY_CHARS or _value_too_big(v) for k, v in data.items()):
            return 512
    else:
        data = record.get("profileData", {})
        if not isinstance(data, dict) or any(len(k) > MAX_KEY_CHARS or _value_too_big(v) for k, v in data.items()):
            return 512
        code = _check_profile_data(data)
        if code is not None:
            return code
    return Checked(kind, key, str(value), ts, record)


def _check_token(record: dict[str, Any], ts: int) -> Checked | int:
    object_id = record.get("objectId")
    if not (isinstance(object_id, str) and _OBJECT_ID.match(object_id)):
        return 530
    data = record.get("tokenData")
    if not isinstance(data, dict):
        return 531
    if data.get("id") in (None, ""):
        return 532
    if data.get("type") in (None, ""):
        return 533
    if not isinstance(data["id"], str) or not isinstance(data["type"], str):
        return 531
    if data["type"] not in TOKEN_TYPES:
        return 535
    if data["type"] == "chrome":
        keys = data.get("keys")
        if not (isinstance(keys, dict) and keys.get("p256dh") and keys.get("auth")):
            return 535
    return Checked("token", "objectId", object_id, ts, record)


def token_fits_platform(token_type: str, platform: str | None) -> bool:
    """Code 534: the token type must suit the device the objectId belongs to."""
    if platform is None:
        return True
    allowed = {
        "Android": {"gcm", "fcm"},
        "iOS": {"apns"},
        "Web": {"chrome"},
        "Windows": {"wns", "mpns"},
    }.get(platform)
    return allowed is None or token_type in allowed
