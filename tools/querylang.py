"""CleverTap's query language as typed inputs: filters, profile groups, did_all/did_any/did_none, campaign audiences.

Every shape is checked before anything is sent, and nothing is dropped silently: a key CleverTap would not read
(``{"City": "London"}`` at the top of ``where``) is refused with the accepted shapes, because an ignored filter widens
an audience to everyone. Schemas stay compact (one description per field); validation is complete.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from tools.base import ToolInput
from tools.models import FROM_DOC, TO_DOC, Day, Operator, check_range

Scalar = str | int | float | bool
FilterValue = Annotated[
    Scalar | list[Scalar],
    WithJsonSchema({"type": ["string", "number", "boolean", "array"]}),
]

PROFILE_GROUPS = ("profile_fields", "app_fields", "demographics", "technographics", "reachability")
WHERE_KEYS = (
    "event_name",
    "from",
    "to",
    "event_properties",
    "session_properties",
    "common_profile_properties",
    "advanced_query",
)
PROFILE_FILTER_EXAMPLE = (
    '{"common_profile_properties": {"profile_fields": [{"name": "City", "operator": "equals", "value": "London"}]}}'
)
SHAPES = (
    "Accepted keys: event_name + from + to (YYYYMMDD; an event the users did), event_properties "
    "[{name, operator, value}], session_properties [{name, value}], common_profile_properties {profile_fields, "
    "app_fields, demographics, technographics, reachability: [{name, operator, value}], geo_fields: [[country, region, "
    "city]], geo_radius: [[lat, lon, km]]}, advanced_query {did_all: [event block], did_none: [event block], did_any: "
    "{any_events: [event block], operator, value}} where an event block is {event_name, from, to, event_properties?, "
    f"operator?, value?}}. A profile-property filter: {PROFILE_FILTER_EXAMPLE}."
)


def _known_keys(value: Any, allowed: tuple[str, ...], where: str) -> Any:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in allowed]
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            raise ValueError(
                f"{where}: unknown keys {names}. CleverTap would ignore them and widen the audience, so they are "
                f"refused. {SHAPES}"
            )
    return value


class PropertyFilter(ToolInput):
    """One condition on an event, session or profile property. A list value means any of; [low, high] for between."""

    name: str = Field(min_length=1, description="Property, case-sensitive.")
    operator: Operator = Field("equals", description="Comparison.")
    value: FilterValue | None = Field(None, description="List: any of; [low, high] for between.")

    @model_validator(mode="after")
    def _value(self) -> PropertyFilter:
        if self.operator in ("exists", "not_exists"):
            return self
        if self.value is None:
            raise ValueError(f"'{self.name}': operator {self.operator} needs a value")
        if self.operator == "between":
            ok = (
                isinstance(self.value, list)
                and len(self.value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.value)
            )
            if not ok:
                raise ValueError(f"'{self.name}': between needs [low, high] numbers")
        elif isinstance(self.value, list) and not self.value:
            raise ValueError(f"'{self.name}': an empty list matches nothing; give at least one value")
        return self


GeoPlace = Annotated[list[str], Field(min_length=1, max_length=3)]


def _radius(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        lat, lon, km = value
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if numbers and -90 <= lat <= 90 and -180 <= lon <= 180 and km > 0:
            return list(value)
    raise ValueError(f"geo_radius entries are [latitude, longitude, radius_km], e.g. [51.5, -0.12, 10]; got {value!r}")


GeoRadius = Annotated[list[float], BeforeValidator(_radius)]


class ProfileProperties(ToolInput):
    """``common_profile_properties``: conditions on who the user is, all of which must hold."""

    profile_fields: list[PropertyFilter] | None = Field(None, max_length=20)
    app_fields: list[PropertyFilter] | None = Field(None, max_length=20)
    demographics: list[PropertyFilter] | None = Field(None, max_length=20)
    technographics: list[PropertyFilter] | None = Field(None, max_length=20)
    reachability: list[PropertyFilter] | None = Field(None, max_length=20)
    geo_fields: list[GeoPlace] | None = Field(None, max_length=50)
    geo_radius: list[GeoRadius] | None = Field(None, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _known_keys(value, (*PROFILE_GROUPS, "geo_fields", "geo_radius"), "common_profile_properties")


class EventBlock(ToolInput):
    """One event a user did (or did not do) in its own date range, optionally a number of times."""

    event_name: str = Field(min_length=1)
    from_: Day = Field(alias="from")
    to: Day
    event_properties: list[PropertyFilter] | None = Field(None, max_length=20)
    operator: Literal["equals", "greater_than", "less_than", "greater_than_equals", "less_than_equals"] | None = None
    value: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _block(self) -> EventBlock:
        check_range(self.from_, self.to)
        if (self.operator is None) != (self.value is None):
            raise ValueError(f"'{self.event_name}': an occurrence condition needs both operator and value")
        return self


class DidAny(ToolInput):
    any_events: list[EventBlock] = Field(min_length=1, max_length=20)
    operator: Literal["equals", "greater_than", "less_than", "greater_than_equals", "less_than_equals"] | None = None
    value: int | None = Field(None, ge=0)


class AdvancedQuery(ToolInput):
    """Users by their event history: did all of, did any of, did none of."""

    did_all: list[EventBlock] | None = Field(None, min_length=1, max_length=20)
    did_any: DidAny | None = None
    did_none: list[EventBlock] | None = Field(None, min_length=1, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _known_keys(value, ("did_all", "did_any", "did_none"), "advanced_query")

    @model_validator(mode="after")
    def _some(self) -> AdvancedQuery:
        if self.did_all is None and self.did_any is None and self.did_none is None:
            raise ValueError("advanced_query needs at least one of did_all, did_any, did_none")
        return self


class SessionFilter(ToolInput):
    name: str = Field(min_length=1)
    operator: Operator = "equals"
    value: FilterValue


class Audience(ToolInput):
    """A query-language body without a required event: a campaign's ``where`` ({} = every user)."""

    event_name: str | None = Field(None, min_length=1)
    from_: Day | None = Field(None, alias="from")
    to: Day | None = None
    event_properties: list[PropertyFilter] | None = Field(None, max_length=20)
    session_properties: list[SessionFilter] | None = Field(None, max_length=20)
    common_profile_properties: ProfileProperties | None = None
    advanced_query: AdvancedQuery | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"'where' is an object (a query), not {type(value).__name__}. {SHAPES}")
        return _known_keys(value, WHERE_KEYS, "where")

    @model_validator(mode="after")
    def _event(self) -> Audience:
        dated = self.from_ is not None or self.to is not None
        if self.event_name is None and (dated or self.event_properties or self.session_properties):
            raise ValueError("where: from/to, event_properties and session_properties apply to an event_name: add one")
        if self.event_name is not None:
            if self.from_ is None or self.to is None:
                raise ValueError(f"where: event '{self.event_name}' needs 'from' and 'to' (YYYYMMDD)")
            check_range(self.from_, self.to)
        return self

    def body(self) -> dict[str, Any]:
        """The audience exactly as CleverTap reads it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def everyone(self) -> bool:
        return not self.body()


# Compact schemas for the model: the typed models above do the checking, the descriptions carry the shapes.
SessionFilters = Annotated[
    list[SessionFilter],
    WithJsonSchema({"type": "array", "items": {"type": "object"}, "description": "[{name, value}]"}),
]
ProfileFilters = Annotated[
    ProfileProperties,
    WithJsonSchema(
        {
            "type": "object",
            "description": "e.g. {profile_fields:[{name:'City',value:'London'}]}",
        }
    ),
]
History = Annotated[
    AdvancedQuery,
    WithJsonSchema({"type": "object", "description": "{did_all|did_none:[{event_name,from,to}], did_any:{...}}"}),
]
AudienceField = Annotated[
    Audience,
    WithJsonSchema(
        {
            "type": "object",
            "description": "Audience ({} = ALL users): event_name+from+to, event_properties, "
            "common_profile_properties, advanced_query. Profile filter: "
            "{common_profile_properties:{profile_fields:[{name:'City',value:'London'}]}}",
        }
    ),
]


EVENT_NAME_DOC = "Case-sensitive, e.g. 'Charged'."
FILTERS_DOC = "All must match: [{name, operator (equals, contains, between...), value}]."
# Typed for validation, described compactly in the schema (the typed form costs ~300 bytes more per tool).
Filters = Annotated[list[PropertyFilter], WithJsonSchema({"type": "array", "items": {"type": "object"}})]


class QueryInput(ToolInput):
    """The query-language core shared by counts, exports and the analyst tools: an event, a date range, optional
    event, session and profile filters and an event-history condition (typed in ``tools.querylang``)."""

    event_name: str = Field(min_length=1, description=EVENT_NAME_DOC)
    from_: Day = Field(alias="from", description=FROM_DOC)
    to: Day = Field(description=TO_DOC)
    event_properties: Filters | None = Field(None, max_length=20, description=FILTERS_DOC)
    session_properties: SessionFilters | None = Field(None, max_length=20)
    common_profile_properties: ProfileFilters | None = None
    advanced_query: History | None = None

    @model_validator(mode="after")
    def _range(self) -> QueryInput:
        check_range(self.from_, self.to)
        return self

    def query(self) -> dict[str, Any]:
        """The body CleverTap reads, exactly as validated (nothing the caller gave is dropped)."""
        return self.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            include={
                "event_name",
                "from_",
                "to",
                "event_properties",
                "session_properties",
                "common_profile_properties",
                "advanced_query",
            },
        )
