"""Charts drawn by tools, kept so that clients can reopen them as ``clevertap://charts/{id}`` resources.

The store lives as long as the server process (one stdio session), and is bounded in count and bytes: the oldest charts
go first. Each chart belongs to the runtime that drew it: over HTTP every Membrane user has their own runtime and never
lists or reads another user's charts (whose ids are random besides).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mcp.types as types

from tools.charts import Chart

CHART_URI_PREFIX = "clevertap://charts/"
CHART_URI_TEMPLATE = CHART_URI_PREFIX + "{id}"
MAX_CHARTS = 32
MAX_BYTES = 4_000_000


@dataclass(frozen=True)
class StoredChart:
    id: str
    chart: Chart
    created: float
    owner: weakref.ref[Any] | None = None

    def owned_by(self, owner: object | None) -> bool:
        return (self.owner() if self.owner is not None else None) is owner

    @property
    def uri(self) -> str:
        return CHART_URI_PREFIX + self.id

    def title(self) -> str:
        return self.chart.title[:120] or f"chart {self.id}"


class ChartStore:
    def __init__(self, max_charts: int = MAX_CHARTS, max_bytes: int = MAX_BYTES) -> None:
        self.max_charts = max_charts
        self.max_bytes = max_bytes
        self._charts: OrderedDict[str, StoredChart] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, chart: Chart, owner: object | None = None) -> StoredChart:
        ref = weakref.ref(owner) if owner is not None else None
        stored = StoredChart(id=secrets.token_urlsafe(9), chart=chart, created=time.time(), owner=ref)
        with self._lock:
            self._charts[stored.id] = stored
            self._bytes += len(chart.png)
            while len(self._charts) > self.max_charts or (self._bytes > self.max_bytes and len(self._charts) > 1):
                _, old = self._charts.popitem(last=False)
                self._bytes -= len(old.chart.png)
        return stored

    def get(self, chart_id: str, owner: object | None = None) -> StoredChart | None:
        with self._lock:
            stored = self._charts.get(chart_id)
        return stored if stored is not None and stored.owned_by(owner) else None

    def all(self, owner: object | None = None) -> list[StoredChart]:
        with self._lock:
            return [s for s in self._charts.values() if s.owned_by(owner)]

    @property
    def bytes(self) -> int:
        return self._bytes

    def blocks(self, chart: Chart, owner: object | None = None) -> list[types.ContentBlock]:
        """Store ``chart`` and return its content blocks: the PNG, then its text alternative with the resource URI."""
        stored = self.put(chart, owner)
        image = types.ImageContent(type="image", data=base64.b64encode(chart.png).decode(), mime_type="image/png")
        alt = types.TextContent(type="text", text=f"{chart.alt}\nThe chart is also readable as {stored.uri}.")
        return [image, alt]

    def resource(self, stored: StoredChart) -> types.Resource:
        return types.Resource(
            uri=stored.uri,
            name=f"chart-{stored.id}",
            title=stored.title(),
            description="A chart a tool drew in this session (PNG).",
            mime_type="image/png",
            size=len(stored.chart.png),
        )

    def contents(self, stored: StoredChart) -> types.BlobResourceContents:
        return types.BlobResourceContents(
            uri=stored.uri, mime_type="image/png", blob=base64.b64encode(stored.chart.png).decode()
        )
