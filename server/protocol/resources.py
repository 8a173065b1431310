"""Read-only MCP resources: the action catalog and the CleverTap regions as JSON, and the charts tools drew (PNG).

Agents (or their hosts) can read these to plan without spending a tool call: which tool maps to which Membrane
action, which tools change the account, and which regional API root an account id lives on.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from server.backends.clevertap.regions import DEFAULT_REGION, REGIONS
from server.protocol.charts import CHART_URI_PREFIX, CHART_URI_TEMPLATE, ChartStore
from server.protocol.prompts import prompt_documents
from server.runtime import Runtime

CATALOG_URI = "clevertap://catalog"
REGIONS_URI = "clevertap://regions"
SCHEMA_URI = "clevertap://schema"  # ?refresh=1 rediscovers, ?event=Charged adds that event's properties
_JSON = "application/json"


def catalog_document(runtime: Runtime) -> dict[str, Any]:
    """The tools this server lists (read-only mode hides the writing ones), with their Membrane action keys."""
    return {
        "backend": runtime.backend,
        "read_only_mode": runtime.settings.read_only,
        "tools": [
            {
                "name": spec.name,
                "action_key": spec.action_key,
                "title": spec.title,
                "read_only": spec.annotations(runtime.settings.read_only)["readOnlyHint"],
                "description": spec.description,
            }
            for spec in runtime.specs
        ],
        "prompts": prompt_documents(),
    }


def regions_document() -> dict[str, Any]:
    return {"default": DEFAULT_REGION, "regions": dict(REGIONS)}


async def schema_resource(runtime: Runtime, uri: str) -> dict[str, Any]:
    """The discovered schema, as clevertap_describe_schema returns it; a failure is the tool's own error text."""
    from tools.errors import ToolFailure
    from tools.schema import schema_document

    params = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    event = (params.get("event") or [""])[0] or None
    refresh = (params.get("refresh") or ["0"])[0].lower() in ("1", "true", "yes")
    try:
        return await schema_document(runtime.context(), event, refresh=refresh)
    except ToolFailure as failure:
        raise MCPError(code=types.INTERNAL_ERROR, message=runtime.scrub(failure.render())) from None


class Resources:
    """The resources/list and resources/read handlers; ``runtime_for`` picks the caller's runtime."""

    def __init__(
        self, runtime_for: Callable[[ServerRequestContext[Any]], Runtime], *, charts: ChartStore | None = None
    ) -> None:
        self._runtime_for = runtime_for
        self._charts = charts or ChartStore()

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=CHART_URI_TEMPLATE,
                    name="chart",
                    title="Chart",
                    description="A chart a tool drew in this session (tools called with chart=true), as PNG.",
                    mime_type="image/png",
                )
            ]
        )

    async def list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=CATALOG_URI,
                    name="catalog",
                    title="CleverTap tool and action catalog",
                    description="Every tool this server lists: name, Membrane action key, title, read-only flag, "
                    "description.",
                    mime_type=_JSON,
                ),
                types.Resource(
                    uri=SCHEMA_URI,
                    name="schema",
                    title="CleverTap account schema",
                    description="Event names and profile properties learned from recent data, cached with a TTL; "
                    f"{SCHEMA_URI}?event=<name> adds that event's properties, ?refresh=1 rediscovers.",
                    mime_type=_JSON,
                ),
                types.Resource(
                    uri=REGIONS_URI,
                    name="regions",
                    title="CleverTap regions",
                    description="CleverTap region codes (CLEVERTAP_REGION) and their API base URLs.",
                    mime_type=_JSON,
                ),
                *(self._charts.resource(stored) for stored in self._charts.all(self._runtime_for(ctx))),
            ]
        )

    async def read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri.startswith(CHART_URI_PREFIX):
            stored = self._charts.get(uri.removeprefix(CHART_URI_PREFIX), self._runtime_for(ctx))
            if stored is None:
                raise MCPError(
                    code=types.INVALID_PARAMS,
                    message=f"no chart {uri!r}: charts are kept for this session only, the oldest dropped first "
                    f"(at most {self._charts.max_charts}); call the tool again with chart=true",
                )
            return types.ReadResourceResult(contents=[self._charts.contents(stored)])
        if uri == CATALOG_URI:
            document = catalog_document(self._runtime_for(ctx))
        elif uri == REGIONS_URI:
            document = regions_document()
        elif uri == SCHEMA_URI or uri.startswith(SCHEMA_URI + "?"):
            document = await schema_resource(self._runtime_for(ctx), uri)
        else:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"unknown resource {uri!r}; this server has {CATALOG_URI}, {REGIONS_URI} and {SCHEMA_URI}",
            )
        text = json.dumps(document, indent=2, ensure_ascii=False)
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=_JSON, text=text)])
