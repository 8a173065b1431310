"""MCP prompts: the recurring analyst and marketer jobs as ready-made plans that name the tools to call, in order.

Each prompt renders with concrete dates (UTC) from its arguments, names only the tools this server lists (so a tool
hidden by ``--tools`` or read-only mode is never suggested), and in read-only mode leaves out every step that writes.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from server.runtime import Runtime
from tools.models import parse_yyyymmdd, to_date


@dataclass(frozen=True)
class Arg:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class PromptSpec:
    name: str
    title: str
    description: str
    arguments: tuple[Arg, ...]
    render: Callable[[Mapping[str, str], set[str], bool], str]


class PromptArgumentError(ValueError):
    pass


def _today() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


def _day(name: str, value: str) -> _dt.date:
    try:
        return to_date(parse_yyyymmdd(value))
    except ValueError as exc:
        raise PromptArgumentError(f"argument {name!r}: {exc}") from None


def _week(value: str) -> _dt.date:
    """The Monday of the week ``value`` names: 'last week' (default), 'this week', or any day in it."""
    text = value.strip().lower()
    today = _today()
    if text in ("", "last week", "previous week"):
        day = today - _dt.timedelta(days=7)
    elif text in ("this week", "current week"):
        day = today
    else:
        day = _day("week", value)
    return day - _dt.timedelta(days=day.weekday())


def _int(name: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise PromptArgumentError(f"argument {name!r} must be a whole number from {low} to {high}, got {value!r}")
    return int(text)


def _events(value: str) -> list[str]:
    events = [e.strip() for e in value.split(",") if e.strip()]
    if not events or len(events) > 8:
        raise PromptArgumentError("argument 'events' must list 1 to 8 comma-separated event names")
    return events


def _iso(day: _dt.date) -> str:
    return day.isoformat()


def _steps(lines: list[str | None]) -> str:
    kept = [line for line in lines if line]
    return "\n".join(f"{i}. {line}" for i, line in enumerate(kept, 1))


RETRY = "A result with done=false is still computing: call the same tool again with the req_id it returned."


def weekly_kpi_report(args: Mapping[str, str], tools: set[str], read_only: bool) -> str:
    monday = _week(args.get("week", ""))
    sunday, prev = monday + _dt.timedelta(days=6), monday - _dt.timedelta(days=7)
    events = _events(args.get("events") or "App Launched, Charged")
    revenue_event = (args.get("revenue_event") or "Charged").strip()
    revenue_property = (args.get("revenue_property") or "Amount").strip()
    names = ", ".join(f"'{e}'" for e in events)
    this_w, last_w = f"{_iso(monday)} to {_iso(sunday)}", f"{_iso(prev)} to {_iso(prev + _dt.timedelta(days=6))}"
    steps = _steps(
        [
            f"clevertap_describe_schema: check that {names} and '{revenue_event}' exist with this exact spelling "
            "(names are case-sensitive); use the spelling it returns."
            if "clevertap_describe_schema" in tools
            else None,
            f"For each key event ({names}): clevertap_get_trends with from={_iso(prev)}, to={_iso(sunday)}, unit=day, "
            "chart=true. Add up each week's 7 days: this week's and last week's counts.",
            "For each key event: clevertap_get_trends with the same dates, unit=week, measure=users: unique users of "
            "each week (the two weekly buckets).",
            f"Revenue: clevertap_get_trends with event_name='{revenue_event}', measure=sum, "
            f"property='{revenue_property}', unit=week, same dates.",
            f"Where revenue came from: clevertap_get_top_values with event_name='{revenue_event}', "
            f"from={_iso(monday)}, to={_iso(sunday)}, property='City', property_type=profile, top_n=5, chart=true."
            if "clevertap_get_top_values" in tools
            else None,
            f"Top campaigns: clevertap_get_campaigns with from={_iso(monday)}, to={_iso(sunday)}, then "
            "clevertap_get_campaign_report for each (at most 10); rank by clicks."
            if "clevertap_get_campaign_report" in tools
            else None,
            f"clevertap_get_message_report with from={_iso(monday)}, to={_iso(sunday)}: sent, viewed and clicked per "
            "message, to complete the campaign ranking."
            if "clevertap_get_message_report" in tools
            else None,
        ]
    )
    return (
        f"Prepare the weekly KPI report for the week {this_w} (UTC, Monday to Sunday), compared with the week "
        f"{last_w}. Key events: {names}; revenue is the sum of '{revenue_property}' on '{revenue_event}'.\n\n"
        f"Call the tools in this order:\n{steps}\n{RETRY}\n\n"
        "Show the user:\n"
        "- a table with one row per metric (events and unique users per key event, revenue): this week, last week, "
        "and the week-over-week change in % (▲/▼; 'n/a' when last week is 0);\n"
        "- the charts the tools returned, each with a one-line caption;\n"
        "- the top 5 campaigns of the week with sent, clicked and click rate;\n"
        "- three short insights a marketer can act on, and any caveat (a week that is not over yet, partial data)."
    )


def campaign_postmortem(args: Mapping[str, str], tools: set[str], read_only: bool) -> str:
    campaign = _int("campaign_id", args.get("campaign_id", ""), 1, 10**15)
    event = (args.get("conversion_event") or "Charged").strip()
    days = _int("days", args.get("days") or "7", 1, 90)
    today = _today()
    steps = _steps(
        [
            f"clevertap_get_campaign_report with id={campaign}: sent, clicked and whatever else it reports. If the "
            "campaign is unknown or not finished, say so and stop.",
            f"clevertap_get_campaigns with from={_iso(today - _dt.timedelta(days=90))}, to={_iso(today)}: find "
            f"campaign {campaign} for its name, channel and start day (call it D).",
            "clevertap_get_message_report from D to D plus the window: delivered, viewed and clicked per message."
            if "clevertap_get_message_report" in tools
            else None,
            f"Conversions: clevertap_get_trends with event_name='{event}', unit=day, from D minus {days} days to D "
            f"plus {days - 1} days, chart=true; then the same with measure=users (unique converters).",
            f"Revenue: the same dates with event_name='{event}', measure=sum, property='Amount' (skip it if "
            f"'{event}' has no Amount).",
        ]
    )
    return (
        f"Write the post-mortem of campaign {campaign}. Conversion event: '{event}'; window: {days} days after the "
        f"campaign's start compared with the {days} days before.\n\nCall the tools in this order:\n{steps}\n{RETRY}\n\n"
        "Show the user:\n"
        "- a summary: name, channel, start day, sent, clicked, click rate (clicked / sent);\n"
        "- reach vs sends: how many the campaign reached compared with how many were sent, and where the difference "
        "went (not delivered, no token, unsubscribed) when the reports say;\n"
        f"- '{event}' and unique converters in the {days} days after vs the {days} days before, with the change in % "
        "and the chart;\n"
        "- a verdict in two sentences, noting that before/after is not proof of cause (weekdays, other campaigns in "
        "the same window)."
    )


def investigate_metric_drop(args: Mapping[str, str], tools: set[str], read_only: bool) -> str:
    event = (args.get("event") or "").strip()
    if not event:
        raise PromptArgumentError("argument 'event' is required: the event whose numbers dropped, e.g. 'Charged'")
    if not (args.get("day") or "").strip():
        raise PromptArgumentError("argument 'day' is required: the day of the drop, e.g. 2026-11-26 or 'yesterday'")
    day = _day("day", args["day"])
    measure = (args.get("measure") or "events").strip()
    if measure not in ("events", "users"):
        raise PromptArgumentError(f"argument 'measure' must be 'events' or 'users', got {measure!r}")
    week_ago, start = day - _dt.timedelta(days=7), day - _dt.timedelta(days=27)
    aggregate = "clevertap_aggregate_events" in tools
    breakdown = (
        f"clevertap_aggregate_events for '{event}' on {_iso(day)} and on {_iso(week_ago)}, grouped in turn by "
        "platform, city and campaign (utm_campaign or the campaign id property), chart=true."
        if aggregate
        else f"clevertap_get_top_values for '{event}' with from=to={_iso(day)} and again with "
        f"from=to={_iso(week_ago)}, for each breakdown: platform (property_type=profile, property 'Platform'; "
        "if it returns nothing try property_type=session), city (profile 'City') and campaign "
        "(session 'utm_campaign'), top_n=10."
    )
    steps = _steps(
        [
            f"clevertap_describe_schema with event_name='{event}': the exact property names to break down by."
            if "clevertap_describe_schema" in tools
            else None,
            f"clevertap_get_trends with event_name='{event}', measure={measure}, unit=day, from={_iso(start)}, "
            f"to={_iso(day)}, chart=true. Compare {_iso(day)} with the day before, with {_iso(week_ago)} (same "
            "weekday) and with the average of the same weekday over the 4 weeks. A change under 10% is usually noise; "
            "say so and stop there.",
            f"Is the day complete? {_iso(day)} is today (UTC), so its data is partial: say so."
            if day >= _today()
            else None,
            f"Break down the drop: {breakdown} For each segment compute the change; the segments whose loss adds up "
            "to most of the total drop are the lead.",
            f"What changed: clevertap_get_campaigns with from={_iso(week_ago)}, to={_iso(day)} (a campaign that ran "
            "on the baseline day and not on the day of the drop explains a drop).",
        ]
    )
    return (
        f"Investigate why '{event}' ({measure}) dropped on {_iso(day)} (UTC).\n\n"
        f"Call the tools in this order:\n{steps}\n{RETRY}\n\n"
        "Show the user:\n"
        "- the chart and a table: the day, the day before, the same weekday last week, the 4-week average, "
        "change in %;\n"
        "- one table per breakdown (segment, baseline, day, change, share of the total drop);\n"
        "- the most likely cause with the evidence for it, what is ruled out, and what to check next.\n"
        "Do not claim a cause the numbers do not show."
    )


def launch_campaign_safely(args: Mapping[str, str], tools: set[str], read_only: bool) -> str:
    goal, audience = (args.get("goal") or "").strip(), (args.get("audience") or "").strip()
    if not goal or not audience:
        raise PromptArgumentError(
            "arguments 'goal' (what the campaign should achieve) and 'audience' (who should get it, e.g. 'users who "
            "added to cart in the last 7 days but did not buy') are required"
        )
    channel = (args.get("channel") or "push").strip().lower()
    can_write = not read_only and "clevertap_create_campaign" in tools
    check = (
        "clevertap_describe_schema: check every event and property the audience definition uses exists with that "
        "exact spelling (case-sensitive)."
        if "clevertap_describe_schema" in tools
        else "Schema check: for every event the audience uses, clevertap_get_event_count over the last 30 days; for "
        "every property, clevertap_get_top_values. A name that returns nothing is misspelt or absent."
    )
    steps = [
        check + " If a name is missing, stop and ask the user.",
        "Count the audience: clevertap_get_profile_count with the event, dates and event_properties that define it. "
        "If it is 0 or far from what the user expects, stop and ask.",
        f"Draft the campaign: name, channel '{channel}', the audience as CleverTap's 'where' (the same definition you "
        "counted), the content (title and body), and when ('now' or 'YYYYMMDD HH:MM'). Show the draft.",
    ]
    if can_write:
        steps += [
            "Preview: clevertap_create_campaign WITHOUT confirm_token. Nothing is sent; it returns the estimated "
            "reach and a confirm_token.",
            "Ask for confirmation: show exactly what will be sent, on which channel, when, and to how many people "
            "(the estimated reach), then ask 'Send this campaign now? (yes/no)' and wait for the answer. Approval of "
            "the draft, earlier instructions or silence are not a yes.",
            "Only after an explicit yes: clevertap_create_campaign again with the same arguments plus the "
            "confirm_token. If anything changed, preview again. If the answer is no, stop; nothing was sent.",
            "Report the campaign id and how to stop it (clevertap_stop_campaign with that id).",
        ]
        rule = "Never skip the preview or the confirmation, and never invent or reuse a confirm_token."
    else:
        steps.append(
            "This server cannot create campaigns (read-only mode or the tool is not enabled). Hand the user the "
            "draft, the audience count and a checklist to create it in the CleverTap dashboard. Do not try to create "
            "it another way (clevertap_request, clevertap_run_action)."
        )
        rule = "Nothing in this plan changes the account."
    return (
        f"Plan a CleverTap campaign safely.\nGoal: {goal}\nAudience: {audience}\nChannel: {channel}\n\n"
        f"Call the tools in this order:\n{_steps(list(steps))}\n{RETRY}\n\n{rule}"
    )


PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        "weekly_kpi_report",
        "Weekly KPI report",
        "Counts, unique users and revenue of key events for one week vs the week before, top campaigns, with charts.",
        (
            Arg("week", "Any day of the week (YYYY-MM-DD or YYYYMMDD), 'last week' (default) or 'this week'."),
            Arg("events", "Comma-separated key events, case-sensitive (default 'App Launched, Charged')."),
            Arg("revenue_event", "Event that carries revenue (default 'Charged')."),
            Arg("revenue_property", "Numeric property summed as revenue (default 'Amount')."),
        ),
        weekly_kpi_report,
    ),
    PromptSpec(
        "campaign_postmortem",
        "Campaign post-mortem",
        "How one campaign did: its report, reach vs sends, conversions after the campaign vs before.",
        (
            Arg("campaign_id", "The campaign's numeric id (clevertap_get_campaigns lists them).", required=True),
            Arg("conversion_event", "Event that counts as a conversion (default 'Charged')."),
            Arg("days", "Days compared after vs before the campaign, 1-90 (default 7)."),
        ),
        campaign_postmortem,
    ),
    PromptSpec(
        "investigate_metric_drop",
        "Investigate a metric drop",
        "Why an event dropped on a day: the previous period compared, broken down by platform, city and campaign.",
        (
            Arg("event", "The event that dropped, case-sensitive, e.g. 'Charged'.", required=True),
            Arg("day", "The day of the drop: YYYY-MM-DD, YYYYMMDD, 'yesterday' or 'N days ago'.", required=True),
            Arg("measure", "'events' (default) or 'users' (unique users)."),
        ),
        investigate_metric_drop,
    ),
    PromptSpec(
        "launch_campaign_safely",
        "Launch a campaign safely",
        "Check the schema, count the audience, preview, and create only after the user confirms.",
        (
            Arg("goal", "What the campaign should achieve.", required=True),
            Arg("audience", "Who should get it, in words (e.g. 'bought in the last 30 days').", required=True),
            Arg("channel", "push (default), email, sms, webpush or whatsapp."),
        ),
        launch_campaign_safely,
    ),
)
_BY_NAME = {p.name: p for p in PROMPTS}


def prompt_documents() -> list[dict[str, Any]]:
    """The prompts for the catalog resource."""
    return [
        {
            "name": p.name,
            "title": p.title,
            "description": p.description,
            "arguments": [{"name": a.name, "description": a.description, "required": a.required} for a in p.arguments],
        }
        for p in PROMPTS
    ]


class Prompts:
    """The prompts/list and prompts/get handlers; ``runtime_for`` picks the caller's runtime."""

    def __init__(self, runtime_for: Callable[[ServerRequestContext[Any]], Runtime]) -> None:
        self._runtime_for = runtime_for

    async def list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        types.PromptArgument(name=a.name, description=a.description, required=a.required)
                        for a in p.arguments
                    ],
                )
                for p in PROMPTS
            ]
        )

    async def get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        spec = _BY_NAME.get(params.name)
        if spec is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"unknown prompt {params.name!r}; this server has {', '.join(_BY_NAME)}",
            )
        args = {k: str(v) for k, v in (params.arguments or {}).items()}
        known = {a.name for a in spec.arguments}
        unknown = sorted(set(args) - known)
        if unknown:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"prompt {spec.name!r} has no argument {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(known))}",
            )
        missing = [a for a in spec.arguments if a.required and not args.get(a.name, "").strip()]
        if missing:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"prompt {spec.name!r} needs "
                + "; ".join(f"argument {a.name!r} ({a.description})" for a in missing),
            )
        runtime = self._runtime_for(ctx)
        try:
            text = spec.render(args, {s.name for s in runtime.specs}, runtime.settings.read_only)
        except PromptArgumentError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=f"prompt {spec.name!r}: {exc}") from None
        return types.GetPromptResult(
            description=spec.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )
