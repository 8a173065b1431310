"""The next step for each CleverTap error the API reference documents, instead of one generic hint for all of them.

The wire client asks ``clevertap_hint`` when it turns an error answer into a ``CleverTapError``; the first rule whose
pattern matches the error text (or whose code matches) wins. Texts are matched case-insensitively because CleverTap
and its emulator word the same error slightly differently ("Invalid target id: 7" / "invalid target id").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

DATE_HINT = (
    "Dates are real calendar days with from <= to and not in the future: YYYYMMDD integers (20261126); the tools also "
    "take '2026-11-26', 'today', '7 days ago', 'last week', 'this month'."
)
RATE_HINT = (
    "CleverTap allows 3 concurrent requests per account (15 for uploads), shared by every tool and client of the "
    "account: wait about 10 s and call again, one call at a time (CleverTap's docs say a breach can last minutes)."
)
_FIELD_HINTS: dict[str, str] = {
    "devices": "push campaigns need 'devices', e.g. ['android', 'ios'] (webpush: ['web']).",
    "when": "give 'when': 'now' or a future 'YYYYMMDD HH:MM' (UTC).",
    "where": "give 'where' (a query such as {event_name, from, to}; {} = all users) or 'segment' (a saved segment id).",
    "segment": "give 'where' (a query; {} = all users) or 'segment' (a saved segment id).",
    "content": "give 'content': push/webpush {title, body}; email {subject, body, sender_name}; sms {body}.",
    "name": "give the campaign a 'name'.",
    "target_mode": "give 'target_mode': push, email, sms, webpush or whatsapp.",
    "event_name": "give 'event_name' (case-sensitive, e.g. 'Charged').",
    "to": "name the recipients in 'to': lists under Identity, Email, objectId, FBID or GPID.",
    "provider_nick_name": "email and sms need 'provider_nick_name', the provider's dashboard nickname.",
    "d": "the body must be {'d': [records]}: use the upload tools, which build it.",
}
# Per-record upload codes (API reference §2.5): what to change in the record.
UPLOAD_CODE_HINTS: dict[int, str] = {
    509: "Add 'evtName'.",
    512: "An event is {identity|objectId, evtName, evtData (object), ts}.",
    513: "This name is one of CleverTap's system events (raised by its SDK only): use your own event name.",
    514: "Gender must be 'M' or 'F'.",
    515: "Email must be a valid address.",
    516: "Phone must be '+<country code><number>', e.g. '+14155551234'.",
    517: "Employed must be 'Y' or 'N'.",
    518: "Education must be School, College or Graduate.",
    519: "Married must be 'Y' or 'N'.",
    520: "Age must be a number.",
    522: "Too many properties on this event: send fewer (100 by default).",
    523: "Add one identity: identity, objectId, FBID or GPID.",
    524: "Each record is an event or a profile: give evtName + evtData, or profileData.",
    525: "ts must be epoch seconds (an integer), or leave it out for 'now'.",
    526: "objectId is not a CleverTap ID this account knows: use identity instead, or an objectId from a profile.",
    528: "This event is discarded in the dashboard (Settings > Events): un-discard it or use another name.",
    530: "objectId must be the CleverTap ID the SDK gave this device.",
    531: "tokenData is {id, type}.",
    532: "Add tokenData.id, the push token.",
    533: "Add tokenData.type: fcm, gcm, apns, wns, mpns or chrome.",
    534: "This token type does not fit this device's platform.",
    535: "tokenData is {id, type} (chrome also keys {p256dh, auth}).",
    555: "CleverTap failed on this record: send it again later.",
}


def _mandatory(m: re.Match[str]) -> str:
    field = m.group(1).strip(" '\"").lower()
    for key, hint in _FIELD_HINTS.items():
        if field == key or field.split(".")[0] == key:
            return f"CleverTap requires '{field}': {hint}"
    return f"CleverTap requires '{field}': add it (see the tool's inputSchema) and call again."


def _invalid_event(m: re.Match[str]) -> str:
    name = m.group(1).strip(" '\"\\]")
    return (
        f"This account has no event {name!r}. Event names are case-sensitive ('Charged', not 'charged'): check the "
        "spelling, or list the account's events with clevertap_describe_schema."
    )


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str]
_RULES: list[Rule] = [
    (
        _p(r"invalid (?:target|campaign)(?: id)?|(?:target|campaign) (?:id )?(?:not found|does not exist)"),
        "No campaign has this id: list campaigns with clevertap_get_campaigns (from/to around the day it was "
        "scheduled) and use an id from there.",
    ),
    (
        _p(r"(?:has ?n[o']t|not) been completed"),
        "CleverTap reports only completed campaigns: check its status with clevertap_get_campaigns; try again once it "
        "is completed.",
    ),
    (_p(r"invalid event\s*:\s*(.+)"), _invalid_event),
    (_p(r"([\w.' \"-]{1,40}?) (?:is|are) (?:mandatory|required|missing)"), _mandatory),
    (_p(r"(?:mandatory|required|missing) (?:field|parameter|key)s?\s*:?\s*'?([\w.]+)"), _mandatory),
    (
        _p(r"mandatory parameter was missing"),
        "A required field is missing: compare the call with the tool's inputSchema (event_name, from, to...).",
    ),
    (_p(r"too many (?:concurrent )?requests|rate limit|request limit"), RATE_HINT),
    (
        _p(r"invalid request id|invalid req_id|req_id.*(?:expired|invalid)"),
        "The req_id expired or belongs to another query: run the count again without req_id.",
    ),
    (
        _p(r"invalid cursor|incorrect usage|cursor_invalidated|cursor.*expired"),
        "The export cursor expired (event cursors last 4 h, 1 h idle; profile cursors 4 days) or was changed: start "
        "the export again and pass its cursor unchanged.",
    ),
    (_p(r"still in progress"), "CleverTap is still preparing the answer: call again in a few seconds."),
    (
        _p(r"profile not found|no profile|user not found"),
        "No profile matches: identity, email and objectId must match exactly. clevertap_get_user_profile answers "
        "found=false for unknown users; clevertap_get_user_profiles finds users by what they did.",
    ),
    (
        _p(r"exactly one of|either .* or .*|not both|one of (?:email|identity)"),
        "Give exactly one of the alternatives the error names.",
    ),
    (_p(r"batch_size"), "batch_size is 1 to 5000 (profiles: a multiple of 23 is best)."),
    (_p(r"restricted system event"), UPLOAD_CODE_HINTS[513]),
    (_p(r"discarded"), UPLOAD_CODE_HINTS[528]),
    (_p(r"in the past"), "Schedule it in the future ('YYYYMMDD HH:MM', UTC) or use 'now'."),
    (_p(r"target_mode"), _FIELD_HINTS["target_mode"]),
    (
        _p(r"yyyymmdd|calendar date|must be a date|'from' must not be after|from.*after.*to|future|\bdates?\b"),
        DATE_HINT,
    ),
    (
        _p(r"malformed json|invalid json|not valid json|remove comments|unexpected character"),
        "The body was not valid JSON: send a JSON object (no comments, no trailing commas).",
    ),
]
_CREDENTIAL_RULES: list[Rule] = [
    (
        _p(r"account id is not valid|account id mandatory|12 digit account"),
        "The account id is wrong, or the account lives in another region: check CLEVERTAP_ACCOUNT_ID (Settings > "
        "Project) and CLEVERTAP_REGION (eu1, in1, sg1, us1, aps3, mec1); clevertap_connect tells which.",
    ),
    (
        _p(r"passcode invalid|invalid passcode|invalid credentials"),
        "The passcode is wrong or was rotated: set CLEVERTAP_PASSCODE from Settings > Passcode (Membrane: reconnect "
        "with clevertap_connect).",
    ),
]
_CODE_RULES: dict[int, str] = {4002: DATE_HINT, 429: RATE_HINT, **UPLOAD_CODE_HINTS}


def _int(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def clevertap_hint(text: str, code: Any = None, *, credentials: bool = False) -> str | None:
    """The next step for a CleverTap error text (and body ``code``), or None when no documented error matches.

    ``credentials``: the answer was a 401, and only the credential rules apply.
    """
    for pattern, hint in _CREDENTIAL_RULES if credentials else _RULES:
        m = pattern.search(text)
        if m:
            return hint if isinstance(hint, str) else hint(m)
    if credentials:
        return None
    number = _int(code)
    return _CODE_RULES.get(number) if number is not None else None
