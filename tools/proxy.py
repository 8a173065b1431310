"""The raw proxy: any CleverTap endpoint, with path hygiene and bounded bodies.

Whether a path may be called (read-only mode, tool selection) and whether it needs a confirmation is decided by the
executor boundary from the server's endpoint policy: this tool only turns its "needs confirmation" into a preview.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import Field, field_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.errors import ConsentRequired, InputError
from tools.models import CONFIRM_DOC
from tools.results import bound_json

MAX_BODY_BYTES = 5_000_000
UPLOAD_BATCH_LIMIT = 1000
_PATH_CHARS = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_VERSIONED = re.compile(r"^/[12]/")


def _decoded(path: str) -> str:
    """Percent-decode until stable (bounded), so that %252e%252e is seen as '..'."""
    for _ in range(4):
        nxt = unquote(path)
        if nxt == path:
            break
        path = nxt
    return path


def check_path(path: str) -> str:
    """Return the path if it is a safe CleverTap API path, else raise ValueError saying what is wrong."""
    if "://" in path or path.startswith("//"):
        raise ValueError("give a path relative to the API such as '/1/profile.json', not a URL")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise ValueError("the path contains control characters (CR, LF, ...)")
    if any(c.isspace() for c in path):
        raise ValueError("the path contains whitespace")
    if "\\" in path:
        raise ValueError("the path contains a backslash")
    if "#" in path:
        raise ValueError("the path contains a fragment ('#')")
    if "?" in path:
        raise ValueError("put query parameters in 'query', not in the path")
    if not _VERSIONED.match(path):
        raise ValueError("the path must start with /1/ or /2/, e.g. '/1/profile.json'")
    if not _PATH_CHARS.match(path):
        raise ValueError("the path contains characters that are not allowed in a URL path")
    decoded = _decoded(path)
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in decoded):
        raise ValueError("the path contains encoded control characters or whitespace")
    if any(c in decoded for c in "\\?#"):
        raise ValueError("the path contains an encoded backslash, '?' or '#'")
    segments = decoded.split("/")[1:]
    if any(s in (".", "..") for s in segments):
        raise ValueError("'.' and '..' segments are not allowed in the path")
    if any(s == "" for s in segments[:-1]):
        raise ValueError("empty segments ('//') are not allowed in the path")
    return path


class RequestInput(ToolInput):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field("GET", description="HTTP method.")
    path: str = Field(min_length=4, max_length=2048, description="e.g. '/1/profile.json'.")
    query: dict[str, str | int | float | bool] | None = Field(None, description="Query parameters.")
    body: Any = Field(None, description="JSON body, up to 5 MB.")
    confirm_token: str | None = Field(None, description=CONFIRM_DOC)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)


class RequestOutput(ToolOutput):
    sent: bool
    status: int | None = None
    body: Any = None
    note: str | None = None
    confirm_token: str | None = None
    expires_at: int | None = None
    next_step: str | None = None


def _check_upload(path: str, body: Any) -> None:
    if not _decoded(path).lower()[3:].startswith("upload"):
        return
    records = body.get("d") if isinstance(body, dict) else None
    if isinstance(records, list) and len(records) > UPLOAD_BATCH_LIMIT:
        raise InputError(
            f"/1/upload takes at most {UPLOAD_BATCH_LIMIT} records per call ({len(records)} given).",
            hint="Use clevertap_upload_events, clevertap_upload_user_profiles or clevertap_upload_device_tokens: "
            "they batch any number of records and report errors per record.",
        )


async def request(ctx: ToolContext, args: RequestInput) -> RequestOutput:
    try:
        size = len(json.dumps(args.body, ensure_ascii=False, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        raise InputError("body is not valid JSON.", hint="Send a JSON object, list or value.") from None
    if size > MAX_BODY_BYTES:
        raise InputError(
            f"body is {size} bytes; the limit is {MAX_BODY_BYTES}.",
            hint="Split it into several calls, or use the typed upload tools for records.",
        )
    _check_upload(args.path, args.body)
    query = dict(args.query or {})
    payload = {"method": args.method, "path": args.path, "query": query, "body": args.body}
    if args.confirm_token is not None:
        ctx.consent_gate(REQUEST.name, payload, args.confirm_token)
    try:
        # Sent once, inside the call's budget; the client raises on refused credentials and says when a write's
        # answer was lost; every other status comes back as it is.
        answer = await ctx.api.raw(args.method, args.path, query=query or None, body=args.body)
    except ConsentRequired as exc:
        if not exc.details.get("preview") or args.confirm_token is not None:
            raise
        token, expires_at = ctx.consent.issue(REQUEST.name, payload)
        return RequestOutput(
            sent=False,
            confirm_token=token,
            expires_at=expires_at,
            next_step=f"Nothing was sent: {args.method} {args.path} cannot be undone ({exc.details.get('why')}). "
            "Show the user what it will do; only if they agree, call again with the same arguments plus "
            "confirm_token (it works once).",
        )
    body, cut = bound_json(answer.body, ctx.max_result_bytes - 500)
    return RequestOutput(
        sent=True,
        status=answer.status,
        body=body,
        note=f"Body truncated to fit the result ({cut})." if cut else None,
    )


REQUEST = ToolSpec(
    name="clevertap_request",
    title="Raw API call",
    description=(
        "Call any CleverTap endpoint no tool covers (path '/1/...', query, JSON body): HTTP status and body. "
        "Irreversible or unknown endpoints return a confirm_token first: ask the user, then repeat with it."
    ),
    input_model=RequestInput,
    output_model=RequestOutput,
    impl=request,
    read_only=False,
    destructive=True,
    idempotent=False,
    open_world=True,
    guarded_in_read_only=True,
    endpoints=(),
    fault_class="read",
    examples_valid=({"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}},),
    examples_invalid=(
        {"method": "GET", "path": "https://example.com/1/x"},
        {"method": "TRACE", "path": "/1/now.json"},
        {"method": "POST", "path": "/1/upload", "body": {"d": [{"identity": "a"}] * 1001}},
    ),
)
