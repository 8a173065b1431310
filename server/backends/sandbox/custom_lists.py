"""Custom list segments through CleverTap's presigned-URL flow, with the upload URL served by the sandbox itself.

1. ``POST /get_custom_list_segment_url`` answers ``{"presignedS3URL", "expiry", "status", "code"}``; the URL points
   at ``PUT /__uploads/<token>`` on this server (no CleverTap headers, like a presigned S3 URL; valid 24 hours).
2. The client PUTs a CSV whose header names one of ``Identity``, ``Email`` or ``objectId``.
3. ``POST /upload_custom_list_segment_completed`` with ``{name, email, filename, creator, url, replace}`` matches the
   rows against the store's profiles and answers ``{"Segment ID", "status", "code"}``; a campaign's ``segment`` can
   then name that id. The paths are also served under ``/1/``.

The catalog upload flow and ``/api/createSegment`` are answered as for an account without those features.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .messages import Answer, HttpError, Request, bad
from .store import Store

T = TypeVar("T")
UPLOAD_PREFIX = "/__uploads/"
URL_TTL_S = 24 * 3600.0
MAX_FILE_BYTES = 50 * 1024 * 1024
KEY_COLUMNS = {"identity": "identity", "email": "email", "objectid": "objectId", "guid": "objectId"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
NOT_ENABLED = {"status": "fail", "error": "This feature is not enabled for your account", "code": 403}


@dataclass
class Upload:
    created: float
    data: bytes | None = None


class CustomLists:
    """The custom list endpoints (a mixin of the app, which supplies ``_db`` and ``_state_lock``)."""

    _state_lock: threading.Lock
    _uploads: dict[str, Upload]

    async def _db(self, fn: Callable[[Store], T]) -> T:
        raise NotImplementedError

    def custom_list_routes(self) -> dict[str, dict[str, Callable[[Request], Awaitable[Answer]]]]:
        routes: dict[str, dict[str, Callable[[Request], Awaitable[Answer]]]] = {}
        for prefix in ("", "/1"):
            routes[f"{prefix}/get_custom_list_segment_url"] = {"POST": self._custom_list_url}
            routes[f"{prefix}/upload_custom_list_segment_completed"] = {"POST": self._custom_list_completed}
            routes[f"{prefix}/get_catalog_url"] = {"POST": self._not_enabled, "GET": self._not_enabled}
        routes["/v2/catalogs"] = {"POST": self._not_enabled, "GET": self._not_enabled}
        routes["/api/createSegment"] = {"POST": self._not_enabled}
        return routes

    async def _not_enabled(self, req: Request) -> Answer:
        return 403, dict(NOT_ENABLED)

    def _live_upload(self, token: str, now: float) -> Upload | None:
        with self._state_lock:
            for key in [k for k, u in self._uploads.items() if now - u.created > URL_TTL_S]:
                del self._uploads[key]
            return self._uploads.get(token)

    async def _custom_list_url(self, req: Request) -> Answer:
        token = secrets.token_urlsafe(24)
        now = time.time()
        self._live_upload("", time.monotonic())  # drop expired URLs
        with self._state_lock:
            self._uploads[token] = Upload(time.monotonic())
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + URL_TTL_S))
        url = f"{req.base_url()}{UPLOAD_PREFIX}{token}"
        return 200, {"presignedS3URL": url, "expiry": expiry, "status": "success", "code": 200}

    async def put_upload(self, req: Request) -> Answer:
        """``PUT /__uploads/<token>``: the presigned URL (S3-like: plain-text errors, 403 once expired)."""
        if req.method != "PUT":
            return 405, "Method not allowed: PUT the file to this URL"
        upload = self._live_upload(req.path.removeprefix(UPLOAD_PREFIX), time.monotonic())
        if upload is None:
            return 403, "Request has expired or the URL is not a valid upload URL"
        if len(req.body) > MAX_FILE_BYTES:
            return 413, f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        upload.data = req.body
        return 200, ""

    async def _custom_list_completed(self, req: Request) -> Answer:
        body = req.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad("'name' is mandatory: the segment's name")
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise HttpError(401, "Email id is either not in the right format or does not belong to a valid admin")
        replace = body.get("replace", False)
        if not isinstance(replace, bool):
            raise bad("'replace' must be true or false")
        url = body.get("url")
        token = url.rsplit(UPLOAD_PREFIX, 1)[-1] if isinstance(url, str) and UPLOAD_PREFIX in url else ""
        upload = self._live_upload(token, time.monotonic())
        if upload is None:
            raise bad("'url' must be a presigned URL from get_custom_list_segment_url that has not expired")
        if upload.data is None:
            raise bad("No file was uploaded to 'url': PUT the CSV file to it first")
        keys = _keys(upload.data)
        meta = {k: str(body[k]) for k in ("creator", "email", "filename") if isinstance(body.get(k), str)}
        saved = await self._db(
            lambda s: s.save_custom_list(name.strip(), keys, replace=replace, meta=meta, now=int(time.time()))
        )
        if saved is None:
            raise bad(f"A segment named {name.strip()!r} already exists (duplicate_name): send replace=true")
        with self._state_lock:
            self._uploads.pop(token, None)
        return 200, {"Segment ID": saved[0], "status": "success", "code": 200}


def _keys(data: bytes) -> list[tuple[str, str]]:
    """The (kind, value) pairs of a custom list CSV; raises HttpError 400 when it has no usable header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("The uploaded file must be a UTF-8 CSV") from None
    rows = list(csv.reader(io.StringIO(text)))
    header = [KEY_COLUMNS.get(h.strip().lower().replace(" ", "")) for h in rows[0]] if rows else []
    if not any(header):
        raise bad("The uploaded CSV needs a header naming an Identity, Email or objectId column")
    out: list[tuple[str, str]] = []
    for row in rows[1:]:
        for kind, value in zip(header, row, strict=False):
            if kind and value.strip():
                out.append((kind, value.strip()))
    return out
