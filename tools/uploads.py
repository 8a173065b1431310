"""Uploads of events, profiles and device tokens (``POST /1/upload``; batching and concurrency live in the client)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import ErrorDetails, PydanticCustomError, to_json
from typing_extensions import NotRequired, TypedDict

from tools.api import RecordKind, UploadResult
from tools.base import UNIQUE, ToolContext, ToolInput, ToolOutput, ToolSpec, compact_schema
from tools.results import json_size

MAX_RECORDS = 200_000
# No legitimate record comes near this (CleverTap: 512-byte values, 256 custom keys); a 100 MB value is never sent.
MAX_RECORD_BYTES = 256 * 1024
_SIZE_RUN = 64
_SHOWN_UNPROCESSED = 100
_SHOWN_RECORD_BYTES = 500
_SHOWN_RANGES = 50
_SHOWN_BAD = 10


def _epoch_seconds(value: int) -> int:
    if not 0 < value < 10_000_000_000:
        raise ValueError("ts must be Unix epoch SECONDS (10 digits), not milliseconds")
    return value


EpochSeconds = Annotated[int, Field(strict=True, description="Epoch seconds."), AfterValidator(_epoch_seconds)]


class _Record(ToolInput):
    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# Events and profiles are TypedDicts, not models: validating 100,000 of them costs half as much (no instance per
# record) and the validated dicts are what is sent. Two checks are made by the list validator in one pass over the
# raw records (``_raw_problems``) instead: one of the identity keys is required, and evtData/profileData must be an
# object, which pydantic would check by copying every properties object (a third of the validation time); they are
# sent as the caller's objects. Numeric ids are accepted and sent as strings.
_RECORD_CONFIG = ConfigDict(extra="forbid", json_schema_extra=compact_schema, coerce_numbers_to_str=True)
# Bounds checked by pydantic itself (no Python call per record); malformed_summary words the error.
_Ts = Annotated[int | None, Field(strict=True, gt=0, lt=10_000_000_000, description="Epoch seconds.")]
_TS_HELP = "ts must be Unix epoch SECONDS (10 digits), not milliseconds"
_Identity = Annotated[str | None, Field(min_length=1, description="User id.")]
_ObjectId = Annotated[str | None, Field(min_length=1, description="CleverTap ID.")]
_FBID = Annotated[str | None, Field(description="Facebook id.")]
_GPID = Annotated[str | None, Field(description="Google id.")]


_EvtData = Annotated[Any, WithJsonSchema({"type": "object", "description": "Properties, may be {}."})]
_ProfileData = Annotated[Any, WithJsonSchema({"type": "object", "description": "Properties to set."})]


@with_config(_RECORD_CONFIG)
class EventRecord(TypedDict):
    identity: NotRequired[_Identity]
    objectId: NotRequired[_ObjectId]
    FBID: NotRequired[_FBID]
    GPID: NotRequired[_GPID]
    evtName: Annotated[str, Field(min_length=1, max_length=120, description="Event name.")]
    evtData: _EvtData
    ts: NotRequired[_Ts]


@with_config(_RECORD_CONFIG)
class ProfileRecord(TypedDict):
    identity: NotRequired[_Identity]
    objectId: NotRequired[_ObjectId]
    FBID: NotRequired[_FBID]
    GPID: NotRequired[_GPID]
    profileData: _ProfileData
    ts: NotRequired[_Ts]


class TokenData(ToolInput):
    id: str = Field(min_length=1, description="The token.")
    type: Literal["apns", "gcm", "fcm", "wns", "mpns", "chrome"] = Field(description="Provider.")
    keys: dict[str, str] | None = Field(None, description="chrome: {p256dh, auth}.")

    @model_validator(mode="after")
    def _chrome_keys(self) -> TokenData:
        if self.type == "chrome" and not (self.keys and self.keys.get("p256dh") and self.keys.get("auth")):
            raise ValueError("chrome tokens need keys {'p256dh': ..., 'auth': ...}")
        return self


class TokenRecord(_Record):
    objectId: str = Field(min_length=1, description="CleverTap ID.")
    tokenData: TokenData = Field(description="Token.")
    ts: EpochSeconds | None = None


_NO_IDENTITY = "needs one of identity, objectId, FBID or GPID"


def _raw_problems(value: Any, data_key: str | None) -> dict[int, list[str]]:
    """Record index -> what is wrong, for the two checks made here rather than by pydantic (see the record types)."""
    if not isinstance(value, list):
        return {}
    problems: dict[int, list[str]] = {}
    # Spelled out rather than all(...) over the keys: this runs once per record of 100,000-record uploads.
    for i, r in enumerate(value):
        if not isinstance(r, dict):
            continue
        if r.get("identity") is None and r.get("objectId") is None and r.get("FBID") is None and r.get("GPID") is None:
            problems[i] = [_NO_IDENTITY]
        if data_key is not None and data_key in r and not isinstance(r[data_key], dict):
            problems.setdefault(i, []).append(f"{data_key}: must be a JSON object (use {{}} for none)")
    return problems


def malformed_summary(
    exc: ValidationError | None, total: int, noun: str, extra: dict[int, list[str]] | None = None
) -> str:
    """One readable line: how many records are wrong, and the first few by 0-based index with what is wrong.

    Only the records shown get their messages worded: every record of a 200,000-record upload may be wrong."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False) if exc is not None else []
    extra = extra or {}
    indices = set(extra)
    general: list[str] = []
    for err in errors:
        loc = err.get("loc", ())
        if loc and isinstance(loc[0], int):
            indices.add(loc[0])
        else:
            general.append(_message(err))
    if general and not indices:
        return "; ".join(general)
    first = heapq.nsmallest(_SHOWN_BAD, indices)
    bad: dict[int, list[str]] = {i: list(extra.get(i, ())) for i in first}
    for err in errors:
        loc = err.get("loc", ())
        if loc and isinstance(loc[0], int) and loc[0] in bad:
            field = ".".join(str(p) for p in loc[1:])
            msg = _message(err)
            bad[loc[0]].append(f"{field}: {msg}" if field else msg)
    shown = "; ".join(f"[{i}] " + ", ".join(bad[i][:3]) for i in first)
    return f"{len(indices)} of {total} {noun} are malformed (0-based indices; nothing was sent): {shown}"


def _message(err: ErrorDetails) -> str:
    loc = err.get("loc", ())
    if loc and loc[-1] == "ts" and err.get("type") in ("greater_than", "less_than"):
        return _TS_HELP
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def oversized_records(value: Any, limit: int = MAX_RECORD_BYTES) -> dict[int, list[str]]:
    """Record index -> why it is too large, for records whose JSON passes ``limit`` bytes.

    Runs of records are measured together (one encode each, so a 100,000-record upload costs about one encode of
    the whole); only a run that passes the limit is measured record by record."""
    if not isinstance(value, list):
        return {}
    problems: dict[int, list[str]] = {}
    for start in range(0, len(value), _SIZE_RUN):
        run = value[start : start + _SIZE_RUN]
        if _json_len(run) <= limit:
            continue
        for offset, record in enumerate(run):
            size = _json_len(record)
            if size > limit:
                problems[start + offset] = [
                    f"the record is {size:,} bytes as JSON, over the limit of {limit:,} per record (CleverTap keeps "
                    "each property value to 512 bytes)"
                ]
    return problems


def _json_len(value: Any) -> int:
    try:
        return len(to_json(value))
    except (ValueError, TypeError):
        return 0  # not JSON: the record validation says what is wrong with it


def _validate_list(value: Any, handler: Callable[[Any], Any], noun: str, data_key: str | None = None) -> Any:
    missing = _raw_problems(value, data_key) if data_key is not None else {}
    for index, problems in oversized_records(value).items():
        missing.setdefault(index, []).extend(problems)
    total = len(value) if isinstance(value, list) else 0
    try:
        validated = handler(value)
    except ValidationError as exc:
        raise PydanticCustomError(
            "malformed_records", "{summary}", {"summary": malformed_summary(exc, total, noun, missing)}
        ) from None
    if missing:
        raise PydanticCustomError(
            "malformed_records", "{summary}", {"summary": malformed_summary(None, total, noun, missing)}
        )
    return validated


def wire_records(records: Sequence[dict[str, Any]], kind: RecordKind) -> list[dict[str, Any]]:
    """Validated records as CleverTap wants them, typed and without explicit nulls. The dicts are the validator's
    own copies, never the caller's, so they are completed in place: 100,000 records are not copied again."""
    out: list[dict[str, Any]] = []
    for r in records:
        if None in r.values():
            r = {k: v for k, v in r.items() if v is not None}
        r["type"] = kind
        out.append(r)
    return out


class _UploadInput(ToolInput):
    dry_run: bool = Field(False, description="Validate without storing.")


class UploadEventsInput(_UploadInput):
    events: list[EventRecord] = Field(min_length=1, max_length=MAX_RECORDS, description="Event records.")

    @field_validator("events", mode="wrap")
    @classmethod
    def _check(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        return _validate_list(value, handler, "events", "evtData")


class UploadProfilesInput(_UploadInput):
    profiles: list[ProfileRecord] = Field(min_length=1, max_length=MAX_RECORDS, description="Profile records.")

    @field_validator("profiles", mode="wrap")
    @classmethod
    def _check(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        return _validate_list(value, handler, "profiles", "profileData")


class UploadTokensInput(_UploadInput):
    tokens: list[TokenRecord] = Field(min_length=1, max_length=MAX_RECORDS, description="Device token records.")

    @field_validator("tokens", mode="wrap")
    @classmethod
    def _check(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        return _validate_list(value, handler, "tokens")


class Rejected(ToolOutput):
    index: int
    code: int | None = None
    error: str
    record: Any = None


class UploadOutput(ToolOutput):
    status: Literal["success", "partial", "fail"]
    processed: int
    unprocessed_count: int
    unprocessed: list[dict[str, Any]] = Field(description="First 100 {index, code, error}")
    unsent: list[str] = Field(default_factory=list)
    batches: int
    next_step: str


def index_ranges(indices: Sequence[int], limit: int = _SHOWN_RANGES) -> list[str]:
    """[0,1,2,5,7,8] -> ['0-2', '5', '7-8'] (at most ``limit`` ranges, then '...')."""
    ranges: list[str] = []
    ordered = sorted(set(indices))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        if len(ranges) == limit and j + 1 < len(ordered):
            ranges.append("...")
            break
        i = j + 1
    return ranges


def _summarise(result: UploadResult, submitted: int, dry_run: bool, noun: str, additive: bool) -> UploadOutput:
    rejected = [
        Rejected(
            index=u.index,
            code=u.code,
            error=u.error,
            record=u.record if u.record is not None and json_size(u.record) <= _SHOWN_RECORD_BYTES else None,
        ).model_dump(exclude_none=True)
        for u in result.unprocessed[:_SHOWN_UNPROCESSED]
    ]
    failed = bool(result.unprocessed or result.unsent)
    status: Literal["success", "partial", "fail"] = "success"
    if failed:
        status = "fail" if result.processed == 0 else "partial"
    verb = "validated (dry run: nothing stored)" if dry_run else "stored"
    steps = [f"{result.processed} of {submitted} {noun} {verb}."]
    if result.unprocessed:
        steps.append(
            "Fix the records listed in 'unprocessed' and resend only those indices"
            + ("; resending accepted records would duplicate them." if additive and not dry_run else ".")
        )
    if result.unsent:
        steps.append(
            f"{len(result.unsent)} records in 'unsent' got no answer ({result.unsent_reason or 'no reason given'}): "
            "resend only them"
            + (", after checking counts if a timeout may have stored them." if additive and not dry_run else ".")
        )
    if dry_run and not failed:
        steps.append("Call again with dry_run=false to store them.")
    return UploadOutput(
        status=status,
        processed=result.processed,
        unprocessed_count=len(result.unprocessed),
        unprocessed=rejected,
        unsent=index_ranges(result.unsent),
        batches=result.batches,
        next_step=" ".join(steps),
    )


async def _upload(
    ctx: ToolContext, wire: Sequence[Mapping[str, Any]], kind: RecordKind, dry_run: bool, noun: str, additive: bool
) -> UploadOutput:
    result = await ctx.api.upload(wire, kind=kind, dry_run=dry_run, progress=ctx.progress)
    return _summarise(result, len(wire), dry_run, noun, additive)


async def upload_events(ctx: ToolContext, args: UploadEventsInput) -> UploadOutput:
    wire = wire_records(cast("list[dict[str, Any]]", args.events), "event")
    return await _upload(ctx, wire, "event", args.dry_run, "events", additive=True)


async def upload_user_profiles(ctx: ToolContext, args: UploadProfilesInput) -> UploadOutput:
    wire = wire_records(cast("list[dict[str, Any]]", args.profiles), "profile")
    return await _upload(ctx, wire, "profile", args.dry_run, "profiles", additive=False)


async def upload_device_tokens(ctx: ToolContext, args: UploadTokensInput) -> UploadOutput:
    wire = wire_records([t.wire() for t in args.tokens], "token")
    return await _upload(ctx, wire, "token", args.dry_run, "tokens", additive=False)


_RESULT = (
    "Up to 200,000; one bad record: nothing sent. Returns processed, unprocessed (0-based index) and unsent: resend "
    "only those."
)

UPLOAD_EVENTS = ToolSpec(
    name="clevertap_upload_events",
    title="Upload events",
    description=(
        "Record events: identity (or objectId/FBID/GPID), evtName, evtData, optional ts. Resending duplicates. "
        + _RESULT
    ),
    input_model=UploadEventsInput,
    output_model=UploadOutput,
    impl=upload_events,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    encodes_strictly=True,
    action_key="upload-events",
    action_name="Upload Events",
    endpoints=("/1/upload",),
    fault_class="upload",
    examples_valid=(
        {
            "events": [
                {"identity": f"example{UNIQUE}{i}", "evtName": "Example Event", "evtData": {"n": i}} for i in range(3)
            ]
        },
    ),
    examples_invalid=(
        {"events": [{"evtName": "X", "evtData": {}}]},
        {"events": []},
        {"events": "not a list"},
        {"events": [{"identity": "a", "evtName": "X", "evtData": "nope"}]},
        {"events": [{"identity": "a", "evtName": "X", "evtData": None}]},
        {"events": [{"identity": "a", "evtName": "X"}]},
    ),
)

UPLOAD_USER_PROFILES = ToolSpec(
    name="clevertap_upload_user_profiles",
    title="Upload profiles",
    description=(
        "Create or update profiles: identity (or objectId/FBID/GPID), profileData {Name, Email, Phone "
        "'+<country><number>', Gender M|F, custom keys; dates '$D_<epoch>'}. " + _RESULT
    ),
    input_model=UploadProfilesInput,
    output_model=UploadOutput,
    impl=upload_user_profiles,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    encodes_strictly=True,
    action_key="upload-user-profiles",
    action_name="Upload User Profiles",
    endpoints=("/1/upload",),
    fault_class="upload",
    examples_valid=(
        {"profiles": [{"identity": f"example{UNIQUE}{i}", "profileData": {"Name": f"Example {i}"}} for i in range(3)]},
    ),
    examples_invalid=(
        {"profiles": [{"profileData": {"Name": "x"}}]},
        {"profiles": [{"identity": "a", "profileData": {}}, {"identity": "b", "profileData": [1]}]},
    ),
)

UPLOAD_DEVICE_TOKENS = ToolSpec(
    name="clevertap_upload_device_tokens",
    title="Upload tokens",
    description=("Attach push tokens to users the SDK has seen: objectId, tokenData {id, type}. " + _RESULT),
    input_model=UploadTokensInput,
    output_model=UploadOutput,
    impl=upload_device_tokens,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    encodes_strictly=True,
    action_key="upload-device-tokens",
    action_name="Upload Device Tokens",
    endpoints=("/1/upload",),
    fault_class="upload",
    examples_valid=(
        {
            "tokens": [
                {"objectId": f"example{UNIQUE}{i}", "tokenData": {"id": f"token{UNIQUE}{i}", "type": "fcm"}}
                for i in range(3)
            ]
        },
    ),
    examples_invalid=(
        {"tokens": [{"identity": "a", "tokenData": {"id": "t", "type": "fcm"}}]},
        {"tokens": [{"objectId": "o", "tokenData": {"id": "t", "type": "carrier-pigeon"}}]},
    ),
)
