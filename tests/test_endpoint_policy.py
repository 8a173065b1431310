"""The endpoint policy table: every endpoint the CleverTap reference names is classified, on canonical paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.backends.clevertap import is_write
from server.policies.endpoints import ACTION_ENDPOINTS, ENDPOINTS, action_kind, canonical_path, classify, endpoint
from tools.catalog import CATALOG, by_action

ROOT = Path(__file__).resolve().parent.parent
# The reference's own words: third-party names it calls invented ("Ignore them").
INVENTED = {"/1/campaigns.json"}


def _reference() -> Path | None:
    for folder in [ROOT, *ROOT.parents]:
        candidate = folder / "shared" / "reference" / "clevertap-api.md"
        if candidate.is_file():
            return candidate
    return None


def reference_paths(text: str) -> set[str]:
    """Every ``/1/...`` or ``/2/...`` path in backticks, with ``{a|b}`` alternatives expanded."""
    found: set[str] = set()
    for raw in re.findall(r"`(?:GET |POST )?(/[12]/[^` ?]*)", text):
        alternatives = re.search(r"\{([^}]*)\}", raw)
        if alternatives:
            found |= {raw.replace(alternatives.group(0), a) for a in alternatives.group(1).split("|")}
        else:
            found.add(raw)
    return found - INVENTED


def test_every_endpoint_in_the_clevertap_reference_is_classified() -> None:
    reference = _reference()
    if reference is None:
        pytest.skip("shared/reference/clevertap-api.md is not beside this checkout")
    paths = reference_paths(reference.read_text())
    assert len(paths) >= 30, sorted(paths)  # the parser found the reference's endpoints, not nothing
    unknown = sorted(p for p in paths if endpoint(p) is None)
    assert unknown == [], f"add these to server/policies/endpoints.py ENDPOINTS: {unknown}"


@pytest.mark.parametrize(
    "path",
    [
        "/1/targets/create.json/",
        "/1/targets/create.json%2F",
        "/1/targets/create.json%2f",
        "/1//targets///create.json",
        "/1/./targets/create.json",
        "/1/targets/x/../create.json",
        "/1/TARGETS/Create.JSON",
        "/1/targets/%63reate.json",
        "/1/targets%2Fcreate.json",
        "/1/targets/create.json?estimate_only=true",
        "/1/targets/create.json#x",
    ],
)
def test_spellings_of_an_irreversible_path_route_to_it(path: str) -> None:
    assert canonical_path(path) == "/1/targets/create.json"
    decision = classify("POST", path, {"name": "x"})
    assert decision.kind == "irreversible" and decision.endpoint is not None


@pytest.mark.parametrize("path", ["/1/targets%252Fcreate.json", "/1/targets/create.json%252F", "/1/nowhere.json"])
def test_double_encodings_and_unknown_paths_are_irreversible(path: str) -> None:
    decision = classify("POST", path, {"estimate_only": True})
    assert decision.endpoint is None and decision.kind == "irreversible"


def test_kinds_and_the_estimate_only_exception() -> None:
    assert classify("POST", "/1/targets/create.json", {"estimate_only": True}).kind == "read"
    assert classify("POST", "/1/targets/create.json", {"estimate_only": "true"}).kind == "irreversible"
    assert classify("POST", "/1/targets/trigger.json").kind == "irreversible"
    assert classify("POST", "/1/upload?dryRun=1").kind == "write"
    assert classify("GET", "/1/profile.json?identity=x").kind == "read"
    assert classify("DELETE", "/1/profile.json").kind == "irreversible"  # CleverTap reads with GET and POST only
    # The wire client retries only what the table calls a read.
    assert is_write("POST", "/1/targets/trigger.json") and is_write("POST", "/1/Upload/")
    assert not is_write("POST", "/1/counts/events.json") and not is_write("GET", "/1/events.json?cursor=a%3D")


def test_actions_are_classified_by_the_endpoint_they_reach() -> None:
    assert set(ACTION_ENDPOINTS) >= {s.action_key for s in CATALOG if s.action_key}
    for key, path in ACTION_ENDPOINTS.items():
        found = endpoint(path)
        assert found is not None and action_kind(key) == found.kind, key
    assert action_kind("create-campaign") == action_kind("clevertap_create_campaign") == "irreversible"
    assert action_kind("get-event-count") == "read" and action_kind("upload-events") == "write"
    assert action_kind("send-test-push") == action_kind(None) == "irreversible"  # unknown: confirm first


def test_tool_declarations_agree_with_the_table() -> None:
    """A tool's declared endpoints are in the table, its own ones name it, and needs_consent matches the kinds."""
    for spec in CATALOG:
        for path in spec.endpoints:
            assert canonical_path(path) == path.lower(), (spec.name, path)
            assert endpoint(path) is not None, (spec.name, path)
        owned = [e for e in ENDPOINTS if spec.name in e.tools]
        if spec.needs_consent:
            assert any(e.kind == "irreversible" for e in owned), spec.name
            assert "confirm_token" in spec.input_model.model_fields, spec.name
        if any(e.kind == "irreversible" for e in owned):
            assert spec.needs_consent, f"{spec.name} owns an irreversible endpoint: set needs_consent"
        if spec.action_key:
            assert by_action(spec.action_key) is spec
