"""The one endpoint policy: every CleverTap endpoint the project knows, classified as read, write or irreversible.

Read-only mode, consent, retries and the audit log all ask this table (through ``classify``/``action_kind``) and
nothing else decides. Paths are matched on ``canonical_path``: the path CleverTap (or the sandbox) would route, so
that no spelling (``%2F``, ``//``, ``/./``, a trailing slash, upper case) reaches an irreversible endpoint as
anything else. A path the table does not know is irreversible for consent and refused in read-only mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

Kind = Literal["read", "write", "irreversible"]
_RANK: dict[str, int] = {"read": 0, "write": 1, "irreversible": 2}


@dataclass(frozen=True)
class Endpoint:
    """One CleverTap endpoint: its canonical path, what a call does, and the tools that own it."""

    path: str
    kind: Kind
    why: str
    tools: tuple[str, ...] = ()
    # POST /1/targets/create.json with ``estimate_only: true`` only estimates the reach.
    read_if_estimate_only: bool = False


_SEND = "it sends messages to users"
_USERS = "it deletes or changes user data for good"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/1/upload",
        "write",
        "it uploads events, profiles or device tokens",
        ("clevertap_upload_events", "clevertap_upload_user_profiles", "clevertap_upload_device_tokens"),
    ),
    Endpoint(
        "/1/events.json",
        "read",
        "it exports events",
        ("clevertap_get_events", "clevertap_get_events_by_cursor", "clevertap_aggregate_events"),
    ),
    Endpoint(
        "/1/profiles.json",
        "read",
        "it exports profiles",
        ("clevertap_get_user_profiles", "clevertap_get_user_profiles_by_cursor"),
    ),
    Endpoint("/1/profile.json", "read", "it reads one profile", ("clevertap_get_user_profile",)),
    Endpoint("/1/counts/events.json", "read", "it counts events", ("clevertap_get_event_count",)),
    Endpoint("/1/counts/profiles.json", "read", "it counts profiles", ("clevertap_get_profile_count",)),
    Endpoint("/1/counts/trends.json", "read", "it counts trends", ("clevertap_get_trends",)),
    Endpoint("/1/counts/top.json", "read", "it counts top values", ("clevertap_get_top_values",)),
    Endpoint("/1/now.json", "read", "it counts active users", ("clevertap_real_time_user_count",)),
    Endpoint(
        "/1/targets/create.json",
        "irreversible",
        "it creates a campaign that may send messages (estimate_only: true in the body only estimates)",
        ("clevertap_create_campaign",),
        read_if_estimate_only=True,
    ),
    Endpoint("/1/targets/list.json", "read", "it lists campaigns", ("clevertap_get_campaigns",)),
    Endpoint("/1/targets/result.json", "read", "it reports on a campaign", ("clevertap_get_campaign_report",)),
    Endpoint("/1/targets/stop.json", "irreversible", "it stops a campaign", ("clevertap_stop_campaign",)),
    Endpoint("/1/targets/trigger.json", "irreversible", "it triggers a campaign"),
    Endpoint("/1/send/push.json", "irreversible", _SEND),
    Endpoint("/1/send/email.json", "irreversible", _SEND),
    Endpoint("/1/send/sms.json", "irreversible", _SEND),
    Endpoint("/1/send/webpush.json", "irreversible", _SEND),
    Endpoint("/1/send/whatsapp.json", "irreversible", _SEND),
    Endpoint("/1/send/externaltrigger.json", "irreversible", _SEND),
    Endpoint("/2/send/externaltrigger.json", "irreversible", _SEND),
    Endpoint("/1/delete/profiles.json", "irreversible", _USERS, ("clevertap_delete_user_profile",)),
    Endpoint("/1/demerge/profiles.json", "irreversible", _USERS),
    Endpoint("/1/subscribe", "irreversible", "it unsubscribes or resubscribes everyone sharing a phone or email"),
    Endpoint("/1/disassociate", "irreversible", "it disassociates a phone number from its profiles"),
    Endpoint("/1/message/report.json", "read", "it reports on messages", ("clevertap_get_message_report",)),
    Endpoint("/1/getVars", "read", "it reads remote config variables"),
    Endpoint("/1/createVars", "irreversible", "it changes remote config variables that live apps read"),
    Endpoint("/1/deleteVars", "irreversible", "it deletes remote config variables"),
    Endpoint("/1/segments/list.json", "read", "it lists segments"),
    Endpoint("/1/update/templateIds.json", "write", "it changes SMS template ids"),
    Endpoint("/1/get_custom_list_segment_url", "irreversible", "it starts a custom list segment upload"),
    Endpoint("/1/upload_custom_list_segment_completed", "irreversible", "it publishes a custom list segment"),
)
_BY_PATH: dict[str, Endpoint] = {e.path.lower(): e for e in ENDPOINTS}

# The CleverTap endpoint each known Membrane action calls (the seed's table of 15, and the message reports): an
# action is classified by the endpoint it reaches, never by its name.
ACTION_ENDPOINTS: dict[str, str] = {
    "real-time-user-count": "/1/now.json",
    "get-event-count": "/1/counts/events.json",
    "get-profile-count": "/1/counts/profiles.json",
    "get-events": "/1/events.json",
    "get-events-by-cursor": "/1/events.json",
    "get-user-profiles": "/1/profiles.json",
    "get-user-profiles-by-cursor": "/1/profiles.json",
    "upload-events": "/1/upload",
    "upload-user-profiles": "/1/upload",
    "upload-device-tokens": "/1/upload",
    "get-campaigns": "/1/targets/list.json",
    "get-campaign-report": "/1/targets/result.json",
    "create-campaign": "/1/targets/create.json",
    "stop-campaign": "/1/targets/stop.json",
    "delete-user-profile": "/1/delete/profiles.json",
    "get-message-reports": "/1/message/report.json",
}
UNKNOWN_WHY = "the server does not know this endpoint, so it treats it as irreversible"


def canonical_path(path: str) -> str:
    """The path CleverTap routes: query and fragment dropped, percent-decoded once, ``.``/``..`` resolved, empty
    segments (``//``, a trailing slash) removed, lower case (the table is matched case-insensitively, so a case
    variant of an irreversible path is never taken for something else)."""
    raw = path.split("?", 1)[0].split("#", 1)[0]
    segments: list[str] = []
    for segment in unquote(raw).split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments).lower()


def endpoint(path: str) -> Endpoint | None:
    """The known endpoint ``path`` routes to, or None."""
    return _BY_PATH.get(canonical_path(path))


@dataclass(frozen=True)
class Decision:
    """What one call is: its kind, why, the endpoint it routes to (None: unknown) and that path canonically."""

    kind: Kind
    why: str
    endpoint: Endpoint | None
    path: str

    @property
    def reads(self) -> bool:
        return self.kind == "read"


def classify(method: str, path: str, body: Any = None) -> Decision:
    """Classify one CleverTap call. Methods other than GET/POST, and unknown paths, are irreversible."""
    canon = canonical_path(path)
    found = _BY_PATH.get(canon)
    if found is None:
        return Decision("irreversible", UNKNOWN_WHY, None, canon)
    if method.upper() not in ("GET", "POST"):
        return Decision("irreversible", f"CleverTap takes GET or POST here, not {method.upper()}", found, canon)
    if found.read_if_estimate_only and isinstance(body, dict) and body.get("estimate_only") is True:
        return Decision("read", "it only estimates the reach", found, canon)
    return Decision(found.kind, found.why, found, canon)


def is_write(method: str, path: str, body: Any = None) -> bool:
    """Whether a call may change the account (so is never retried and is audited)."""
    return not classify(method, path, body).reads


def action_endpoint(key: str) -> Endpoint | None:
    """The endpoint an action key reaches (a tool name of a popular action counts as its key)."""
    from tools.catalog import by_action

    spec = by_action(key)
    action_key = spec.action_key if spec is not None and spec.action_key else key
    path = ACTION_ENDPOINTS.get(action_key)
    return _BY_PATH.get(path) if path else None


def action_kind(key: str | None) -> Kind:
    """An action's kind by the endpoint it reaches; an action the server cannot classify is irreversible."""
    found = action_endpoint(key) if key else None
    return found.kind if found is not None else "irreversible"


def owners(path: str) -> tuple[str, ...]:
    """The tools that own the endpoint ``path`` routes to (none for unknown paths)."""
    found = endpoint(path)
    return found.tools if found is not None else ()


def tool_kind(tool: str) -> Kind:
    """The strongest kind among the endpoints a tool owns (read for tools that own none)."""
    kinds = [e.kind for e in ENDPOINTS if tool in e.tools]
    return max(kinds, key=lambda k: _RANK[k], default="read")
