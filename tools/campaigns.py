"""Campaigns: list, report, stop, and create (estimate first, create only with a confirmation token)."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec, example_from
from tools.errors import CampaignNotCompleted, CleverTapCredentialsError, CleverTapError
from tools.models import CONFIRM_DOC, FROM_DOC, TO_DOC, Day, check_range, iso_compact, iso_epoch
from tools.querylang import PROFILE_FILTER_EXAMPLE, AudienceField
from tools.results import take_within

_WHEN = re.compile(r"^(\d{8}) (\d{2}):(\d{2})$")


class CampaignRangeInput(ToolInput):
    from_: Day = Field(alias="from", description=FROM_DOC)
    to: Day = Field(description=TO_DOC)

    @model_validator(mode="after")
    def _range(self) -> CampaignRangeInput:
        check_range(self.from_, self.to)
        return self


class Campaign(ToolOutput):
    id: int | str
    name: str | None = None
    scheduled_on: int | str | None = None
    scheduled_at: str | None = None
    status: str | None = None


class CampaignsOutput(ToolOutput):
    campaigns: list[dict[str, Any]]
    count: int
    truncated: bool | None = None
    next_step: str | None = None


MAX_CAMPAIGN_ID = 2**63 - 1


def _campaign_id(value: int) -> int:
    # Campaign ids are 64-bit integers upstream; a larger one can name no campaign (and made the emulator's SQLite
    # overflow into HTTP 500s that the client retried). Checked here rather than as a schema "maximum".
    if value > MAX_CAMPAIGN_ID:
        raise ValueError("no campaign has an id this large: use an id from clevertap_get_campaigns")
    return value


class CampaignIdInput(ToolInput):
    id: Annotated[int, AfterValidator(_campaign_id)] = Field(
        gt=0, description="Campaign id, from clevertap_get_campaigns."
    )


class ReportOutput(ToolOutput):
    id: int
    completed: bool
    result: dict[str, Any] | None = None
    message: str | None = None
    next_step: str | None = None


class StopCampaignInput(CampaignIdInput):
    confirm_token: str | None = Field(None, description=CONFIRM_DOC)


class StopOutput(ToolOutput):
    id: int
    stopped: bool
    status: str | None = None
    message: str
    confirm_token: str | None = None


def _campaign_list(answer: dict[str, Any]) -> list[Any]:
    """The campaigns of a list answer: the client always puts them under ``targets``."""
    value = answer.get("targets")
    return value if isinstance(value, list) else []


def _iso(value: Any) -> str | None:
    """``scheduled_on`` (YYYYMMDDHHMM, or epoch seconds) as ISO 8601 UTC."""
    return iso_compact(value) or (iso_epoch(value) if isinstance(value, int) and len(str(value)) == 10 else None)


async def get_campaigns(ctx: ToolContext, args: CampaignRangeInput) -> CampaignsOutput:
    answer = await ctx.api.call("POST", "/1/targets/list.json", body={"from": args.from_, "to": args.to})
    items = [c for c in _campaign_list(answer) if isinstance(c, dict) and c.get("id") is not None]
    campaigns = [
        Campaign(
            id=c["id"],
            name=c.get("name"),
            scheduled_on=c.get("scheduled_on"),
            scheduled_at=_iso(c.get("scheduled_on")),
            status=c.get("status"),
        )
        for c in items
    ]
    rows = [c.model_dump(exclude_none=True) for c in campaigns]
    n = take_within(rows, ctx.max_result_bytes - 300, min_items=0)
    truncated = n < len(rows)
    return CampaignsOutput(
        campaigns=rows[:n],
        count=len(rows),
        truncated=truncated or None,
        next_step=f"Only the first {n} are listed: narrow the date range." if truncated else None,
    )


async def get_campaign_report(ctx: ToolContext, args: CampaignIdInput) -> ReportOutput:
    try:
        answer = await ctx.api.call("POST", "/1/targets/result.json", body={"id": args.id})
    except CampaignNotCompleted as exc:
        return ReportOutput(
            id=args.id,
            completed=False,
            message=str(exc.details.get("error") or "This target hasn't been completed"),
            next_step="The campaign has not finished: CleverTap reports only completed campaigns. Try again later.",
        )
    result = answer.get("result")
    return ReportOutput(id=args.id, completed=True, result=result if isinstance(result, dict) else None)


_STOPPABLE = ("scheduled", "pending", "running", "paused")
_STATUS_WINDOW_DAYS = 366


async def _campaign_status(ctx: ToolContext, campaign_id: int) -> str | None:
    """The campaign's status, or None when CleverTap does not say. CleverTap's stop answers "success" whatever the
    state, so the state is read first: a report exists only for a completed campaign, and the campaign list (within
    a year either side of today) carries the status."""
    try:
        await ctx.api.call("POST", "/1/targets/result.json", body={"id": campaign_id})
        return "completed"
    except CampaignNotCompleted:
        pass
    today = _dt.datetime.now(_dt.timezone.utc).date()
    span = _dt.timedelta(days=_STATUS_WINDOW_DAYS)
    window = {"from": int((today - span).strftime("%Y%m%d")), "to": int((today + span).strftime("%Y%m%d"))}
    try:
        answer = await ctx.api.call("POST", "/1/targets/list.json", body=window)
    except CleverTapCredentialsError:
        raise
    except CleverTapError:
        return None
    for item in _campaign_list(answer):
        if isinstance(item, dict) and str(item.get("id")) == str(campaign_id) and isinstance(item.get("status"), str):
            return str(item["status"]).lower()
    return None


async def stop_campaign(ctx: ToolContext, args: StopCampaignInput) -> StopOutput:
    status = await _campaign_status(ctx, args.id)
    if status is not None and status not in _STOPPABLE:
        return StopOutput(
            id=args.id,
            stopped=False,
            status=status,
            message=f"Campaign {args.id} is {status}, not running or scheduled: there is nothing to stop, and nothing "
            "was sent.",
        )
    state = status or "not completed (its exact state is unknown)"
    preview = ctx.consent_gate(STOP_CAMPAIGN.name, {"id": args.id}, args.confirm_token)
    if preview is not None:
        return StopOutput(
            id=args.id,
            stopped=False,
            status=status,
            message=f"Nothing was stopped yet. Campaign {args.id} is {state}. Tell the user that stopping it cannot "
            "be undone; only if they agree, call again with the same id plus confirm_token.",
            confirm_token=preview[0],
        )
    await ctx.api.call("POST", "/1/targets/stop.json", body={"id": args.id})
    return StopOutput(
        id=args.id,
        stopped=True,
        status="stopped",
        message=f"Campaign {args.id} was {state}; CleverTap accepted the stop, so no more messages go out.",
    )


class CreateCampaignInput(ToolInput):
    name: str = Field(min_length=1, description="Campaign name.")
    target_mode: Literal["push", "email", "sms", "webpush", "whatsapp"] = Field(description="Channel.")
    where: AudienceField | None = None
    segment: int | str | None = Field(None, description="Saved segment id, instead of where.")
    content: dict[str, Any] = Field(
        description="push/webpush {title, body}; email {subject, body, sender_name}; sms {body}."
    )
    devices: list[str] | None = Field(None, min_length=1, description="push: android, ios, windows; webpush: web.")
    when: str = Field(description="'now' or 'YYYYMMDD HH:MM'.")
    provider_nick_name: str | None = Field(None, description="Provider (email, sms, whatsapp).")
    respect_frequency_caps: bool | None = Field(None, description="Honour frequency caps.")
    labels: list[str] | None = Field(None, description="Labels.")
    confirm_token: str | None = Field(None, description=CONFIRM_DOC)

    @field_validator("when")
    @classmethod
    def _when(cls, value: str) -> str:
        text = value.strip()
        if text.lower() == "now":
            return "now"
        m = _WHEN.match(text)
        try:
            if m is None:
                raise ValueError
            day = m.group(1)
            _dt.datetime(int(day[:4]), int(day[4:6]), int(day[6:]), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise ValueError(f"{value!r}: use 'now' or 'YYYYMMDD HH:MM', e.g. '20261201 09:30'") from None
        return text

    @model_validator(mode="after")
    def _shape(self) -> CreateCampaignInput:
        if (self.where is None) == (self.segment is None):
            raise ValueError("give exactly one of 'where' (a query; {} = all users) or 'segment'")
        if self.target_mode == "push" and not self.devices:
            raise ValueError("push campaigns need 'devices', e.g. ['android', 'ios']")
        required = {
            "push": ("title", "body"),
            "webpush": ("title", "body"),
            "email": ("subject", "body"),
            "sms": ("body",),
        }
        missing = [k for k in required.get(self.target_mode, ()) if not self.content.get(k)]
        if missing:
            raise ValueError(f"{self.target_mode} content needs {', '.join(missing)}")
        return self

    def payload(self) -> dict[str, Any]:
        """The campaign exactly as sent to CleverTap (the confirmation token is bound to it)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"confirm_token"}, exclude_none=True)


class CreateCampaignOutput(ToolOutput):
    created: bool
    id: int | str | None = None
    estimates: dict[str, Any] = Field(default_factory=dict)
    total_estimated_reach: int | None = None
    warning: str | None = None
    confirm_token: str | None = None
    expires_at: int | None = None
    when: str
    next_step: str


def _estimates(answer: dict[str, Any]) -> dict[str, Any]:
    value = answer.get("estimates")
    return dict(value) if isinstance(value, dict) else {}


def _total(estimates: dict[str, Any]) -> int:
    return sum(int(v) for v in estimates.values() if isinstance(v, (int, float)) and not isinstance(v, bool))


async def _create(ctx: ToolContext, args: CreateCampaignInput, payload: dict[str, Any]) -> CreateCampaignOutput:
    answer = await ctx.api.call("POST", "/1/targets/create.json", body=payload)
    estimates = _estimates(answer)
    stop = " It can be stopped with clevertap_stop_campaign until it has gone out." if args.when != "now" else ""
    return CreateCampaignOutput(
        created=True,
        id=answer.get("id"),
        estimates=estimates,
        total_estimated_reach=_total(estimates),
        when=args.when,
        next_step=f"Campaign created (id {answer.get('id')}).{stop} Use clevertap_get_campaign_report once complete.",
    )


async def create_campaign(ctx: ToolContext, args: CreateCampaignInput) -> CreateCampaignOutput:
    payload = args.payload()
    preview = ctx.consent_gate(CREATE_CAMPAIGN.name, payload, args.confirm_token)
    if preview is None:
        return await _create(ctx, args, payload)
    token, expires_at = preview
    answer = await ctx.api.call("POST", "/1/targets/create.json", body={**payload, "estimate_only": True})
    estimates = _estimates(answer)
    total = _total(estimates)
    warning = await _everyone_warning(ctx, args, payload, total)
    timing = "immediately and cannot be recalled" if args.when == "now" else f"at {args.when}"
    return CreateCampaignOutput(
        created=False,
        estimates=estimates,
        total_estimated_reach=total,
        warning=warning,
        confirm_token=token,
        expires_at=expires_at,
        when=args.when,
        next_step=(
            (f"WARNING: {warning} " if warning else "")
            + f"Nothing was sent. Tell the user this {args.target_mode} campaign reaches about {total} users and goes "
            f"out {timing}; only if they agree, call again with the same arguments plus confirm_token."
        ),
    )


async def _everyone_warning(
    ctx: ToolContext, args: CreateCampaignInput, payload: dict[str, Any], total: int
) -> str | None:
    """A non-empty audience that reaches as many users as the whole account usually means a filter that did not
    do what was meant: say so in the preview, before the user agrees to anything."""
    if args.where is None or args.where.everyone or total == 0:
        return None
    everyone = await ctx.api.call(
        "POST", "/1/targets/create.json", body={**payload, "where": {}, "estimate_only": True}
    )
    if _total(_estimates(everyone)) != total:
        return None
    return (
        f"this 'where' reaches every reachable user of the account ({total}), the same as no filter at all. "
        f"Check it selects who you mean; a profile-property filter looks like {PROFILE_FILTER_EXAMPLE}."
    )


GET_CAMPAIGNS = ToolSpec(
    name="clevertap_get_campaigns",
    title="List campaigns",
    description=(
        "Campaigns scheduled to start between two dates: [{id, name, scheduled_at, status}]; ids for "
        "clevertap_get_campaign_report or clevertap_stop_campaign."
    ),
    input_model=CampaignRangeInput,
    output_model=CampaignsOutput,
    impl=get_campaigns,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-campaigns",
    action_name="Get Campaigns",
    endpoints=("/1/targets/list.json",),
    fault_class="read",
    examples_valid=({"from": "this year", "to": "this year"},),
    examples_invalid=({"from": "today", "to": "30 days ago"},),
)

GET_CAMPAIGN_REPORT = ToolSpec(
    name="clevertap_get_campaign_report",
    title="Campaign report",
    description=(
        "Metrics (sent, clicked...) of one campaign by id. Only completed campaigns have a report: otherwise "
        "completed=false and a message."
    ),
    input_model=CampaignIdInput,
    output_model=ReportOutput,
    impl=get_campaign_report,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-campaign-report",
    action_name="Get Campaign Report",
    endpoints=("/1/targets/result.json",),
    fault_class="read",
    examples_valid=({"id": example_from("clevertap_get_campaigns", "campaigns[status=completed].id")},),
    examples_invalid=({"id": "abc"}, {"id": -5}),
)

CREATE_CAMPAIGN = ToolSpec(
    name="clevertap_create_campaign",
    title="Create campaign",
    description=(
        "Create a campaign for a 'where' audience ({} = everyone) or a segment, 'now' or at 'YYYYMMDD HH:MM'. The "
        "first call sends nothing and returns the reach and a confirm_token: show the user, and only if they agree "
        "repeat the call with confirm_token."
    ),
    input_model=CreateCampaignInput,
    output_model=CreateCampaignOutput,
    impl=create_campaign,
    read_only=False,
    destructive=True,
    idempotent=False,
    open_world=True,
    action_key="create-campaign",
    action_name="Create Campaign",
    endpoints=("/1/targets/create.json",),
    fault_class="write",
    needs_consent=True,
    examples_valid=(
        {
            "name": "Example campaign",
            "target_mode": "push",
            "where": {},
            "content": {"title": "Hi", "body": "There"},
            "devices": ["android"],
            "when": "now",
        },
    ),
    examples_invalid=({"name": "x"},),
)

STOP_CAMPAIGN = ToolSpec(
    name="clevertap_stop_campaign",
    title="Stop campaign",
    description=(
        "Stop a scheduled or running campaign by id (cannot be undone). First call: its status and a confirm_token; "
        "repeat with the token once the user agrees."
    ),
    input_model=StopCampaignInput,
    output_model=StopOutput,
    impl=stop_campaign,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    action_key="stop-campaign",
    action_name="Stop Campaign",
    endpoints=("/1/targets/stop.json", "/1/targets/result.json", "/1/targets/list.json"),
    fault_class="write",
    needs_consent=True,
    examples_valid=(
        {"id": example_from("clevertap_get_campaigns", "campaigns[status=running|paused|scheduled|pending].id")},
    ),
    examples_invalid=({"id": None},),
)
