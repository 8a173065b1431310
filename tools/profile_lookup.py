"""One user's profile by identity, email or CleverTap ID (``GET /1/profile.json``), with an ISO per-event summary.

CleverTap's answer for an unknown user was never seen documented; the wire client turns each variant into
``ProfileNotFound``, which is ``found: false`` here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.errors import ProfileNotFound
from tools.models import iso_epoch
from tools.results import bound_json

PATH = "/1/profile.json"
# Keys of a platformInfo entry worth showing; a push token is a long secret-ish string, reported as a flag instead.
_DEVICE_KEYS = ("platform", "objectId", "os_version", "app_version", "make", "model", "browser")
_KEYS = {"identity": "identity", "email": "email", "object_id": "objectId"}


class UserProfileInput(ToolInput):
    identity: str | None = Field(None, min_length=1, max_length=1024, description="Your user id (exact).")
    email: str | None = Field(None, min_length=3, max_length=1024, description="Email (exact).")
    object_id: str | None = Field(None, min_length=1, max_length=1024, description="CleverTap ID (objectId/guid).")

    @model_validator(mode="after")
    def _one(self) -> UserProfileInput:
        given = [name for name in _KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'identity', 'email' or 'object_id'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def lookup(self) -> tuple[str, str]:
        """(the argument's name, its value)."""
        name = next(n for n in _KEYS if getattr(self, n) is not None)
        return name, str(getattr(self, name)).strip()


class UserProfileOutput(ToolOutput):
    found: bool
    profile: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None
    next_step: str | None = None


def _device(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, dict):
        return None
    out = {k: entry[k] for k in _DEVICE_KEYS if entry.get(k) not in (None, "")}
    if entry.get("push_token"):
        out["push"] = True
    seen = iso_epoch(entry.get("ls"))
    if seen:
        out["last_seen"] = seen
    return out or None


def _events(summary: Any) -> list[dict[str, Any]]:
    """CleverTap's ``{name: {count, first_seen, last_seen}}`` (epoch seconds) as a list, most recent first."""
    if not isinstance(summary, dict):
        return []
    rows: list[dict[str, Any]] = []
    for name, item in summary.items():
        if not isinstance(item, dict):
            continue
        row: dict[str, Any] = {"event": name, "count": item.get("count")}
        for key in ("first_seen", "last_seen"):
            iso = iso_epoch(item.get(key))
            if iso is not None:
                row[key] = iso
            elif item.get(key) is not None:
                row[key] = item[key]
        rows.append({k: v for k, v in row.items() if v is not None})
    rows.sort(key=lambda r: (str(r.get("last_seen", "")), str(r["event"])), reverse=True)
    return rows


def _profile(record: dict[str, Any]) -> dict[str, Any]:
    """The record's fields, identities first, devices as ``platforms`` and their CleverTap IDs as ``object_ids``."""
    profile: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("events", "platformInfo") or value in (None, "", [], {}):
            continue
        profile[key] = value
    devices = [d for d in map(_device, record.get("platformInfo") or []) if d]
    ids = [str(d["objectId"]) for d in devices if d.get("objectId")]
    if ids:
        profile["object_ids"] = ids
    if devices:
        profile["platforms"] = devices
    return profile


async def _fetch(ctx: ToolContext, key: str, value: str) -> dict[str, Any] | None:
    """The profile record, or None when CleverTap knows no such user."""
    try:
        answer = await ctx.api.call("GET", PATH, query={key: value})
    except ProfileNotFound:
        return None
    record = answer.get("record")
    return record if isinstance(record, dict) and record else None


async def get_user_profile(ctx: ToolContext, args: UserProfileInput) -> UserProfileOutput:
    name, value = args.lookup()
    record = await _fetch(ctx, _KEYS[name], value)
    if record is None:
        return UserProfileOutput(
            found=False,
            next_step=(
                f"No profile has {name} {value!r} (values must match exactly). To find users by what they did, use "
                "clevertap_get_user_profiles; try another identifier if the user has several."
            ),
        )
    out: dict[str, Any] = {"found": True, "profile": _profile(record), "events": _events(record.get("events"))}
    bounded, cut = bound_json(out, ctx.max_result_bytes - 400)
    result = UserProfileOutput.model_validate(bounded)
    if cut:
        result.next_step = f"The profile was cut to fit the result ({cut})."
    return result


GET_USER_PROFILE = ToolSpec(
    name="clevertap_get_user_profile",
    title="Look up a user",
    description=(
        "One user by exactly one of identity, email or object_id: fields, devices, each event with count and "
        "first/last seen. Unknown: found=false."
    ),
    input_model=UserProfileInput,
    output_model=UserProfileOutput,
    impl=get_user_profile,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=("/1/profile.json",),
    fault_class="read",
    examples_valid=({"identity": "no-such-user-1"}, {"email": "nobody@example.com"}),
    examples_invalid=({}, {"identity": "a", "email": "b@example.com"}, {"object_id": ""}),
)
