"""Profile deletion: look the profiles up first, delete only with a confirmation token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.errors import CleverTapCredentialsError, CleverTapError, ProfileNotFound
from tools.models import CONFIRM_DOC

MAX_IDS = 100
_LOOKUPS = 10

Ids = str | Annotated[list[str], Field(min_length=1, max_length=MAX_IDS)]


class DeleteProfileInput(ToolInput):
    identity: Ids | None = Field(None, description="Identity, or a list of up to 100.")
    guid: Ids | None = Field(None, description="CleverTap ID(s), instead of identity.")
    confirm_token: str | None = Field(None, description=CONFIRM_DOC)

    @model_validator(mode="after")
    def _one(self) -> DeleteProfileInput:
        if self.identity is not None and self.guid is not None:
            raise ValueError("give 'identity' or 'guid', not both (CleverTap refuses both in one call)")
        if self.identity is None and self.guid is None:
            raise ValueError("give 'identity' (your user ids) or 'guid' (CleverTap IDs)")
        values = self.values()
        if not values or any(not v.strip() for v in values):
            raise ValueError("ids must be non-empty strings")
        if len(values) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} ids per call ({len(values)} given): split the list")
        return self

    def key(self) -> Literal["identity", "guid"]:
        return "identity" if self.identity is not None else "guid"

    def values(self) -> list[str]:
        value = self.identity if self.identity is not None else self.guid
        return [value] if isinstance(value, str) else list(value or [])

    def payload(self) -> dict[str, Any]:
        """The body of /1/delete/profiles.json, exactly as the caller gave it."""
        return {self.key(): self.identity if self.identity is not None else self.guid}


class FoundProfile(ToolOutput):
    id: str
    found: bool | None = None
    name: str | None = None
    email: str | None = None
    error: str | None = None


class DeleteProfileOutput(ToolOutput):
    deleted: bool
    key: Literal["identity", "guid"]
    count: int
    found: list[dict[str, Any]] = Field(default_factory=list)
    confirm_token: str | None = None
    expires_at: int | None = None
    next_step: str


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def _look_up(ctx: ToolContext, key: str, value: str) -> FoundProfile:
    query = {"identity": value} if key == "identity" else {"objectId": value}
    try:
        answer = await ctx.api.call("GET", "/1/profile.json", query=query)
    except ProfileNotFound:
        return FoundProfile(id=value, found=False)
    except CleverTapCredentialsError:
        raise
    except CleverTapError as exc:
        return FoundProfile(id=value, found=None, error=exc.message[:200])
    record = answer.get("record")
    if not isinstance(record, dict) or not record:
        return FoundProfile(id=value, found=False)
    raw = record.get("profileData")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return FoundProfile(
        id=value,
        found=True,
        name=_text(record.get("name") or data.get("Name")),
        email=_text(record.get("email") or data.get("Email")),
    )


async def _delete(ctx: ToolContext, args: DeleteProfileInput, payload: dict[str, Any]) -> DeleteProfileOutput:
    await ctx.api.call("POST", "/1/delete/profiles.json", body=payload)
    return DeleteProfileOutput(
        deleted=True,
        key=args.key(),
        count=len(args.values()),
        next_step="Deletion accepted; CleverTap may take a while to remove the profiles everywhere.",
    )


async def delete_user_profile(ctx: ToolContext, args: DeleteProfileInput) -> DeleteProfileOutput:
    payload = args.payload()
    preview = ctx.consent_gate(DELETE_USER_PROFILE.name, payload, args.confirm_token)
    if preview is None:
        return await _delete(ctx, args, payload)
    token, expires_at = preview
    values = args.values()
    found = [await _look_up(ctx, args.key(), v) for v in values[:_LOOKUPS]]
    hits = sum(1 for f in found if f.found)
    return DeleteProfileOutput(
        deleted=False,
        key=args.key(),
        count=len(values),
        found=[f.model_dump(exclude_none=True) for f in found],
        confirm_token=token,
        expires_at=expires_at,
        next_step=(
            f"Nothing was deleted. {hits} of the {len(found)} ids looked up exist. Show the user what will be deleted "
            "(permanently, with all their data); only if they agree, call again with the same arguments plus "
            "confirm_token."
        ),
    )


DELETE_USER_PROFILE = ToolSpec(
    name="clevertap_delete_user_profile",
    title="Delete profiles",
    description=(
        "Permanently delete up to 100 profiles by identity or guid. First call: what was found and a confirm_token; "
        "repeat with the token once the user agrees."
    ),
    input_model=DeleteProfileInput,
    output_model=DeleteProfileOutput,
    impl=delete_user_profile,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    action_key="delete-user-profile",
    action_name="Delete User Profile",
    endpoints=("/1/profile.json", "/1/delete/profiles.json"),
    fault_class="write",
    needs_consent=True,
    examples_valid=({"identity": "user-00001"},),
    examples_invalid=(
        {"identity": "a", "guid": "b"},
        {},
        {"identity": [f"u{i}" for i in range(101)]},
    ),
)
