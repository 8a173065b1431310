"""Tool names and Membrane action keys without importing the tools (fast start: --tools/--exclude-tools
are checked against them; the catalog builds its pydantic models only when a tool is first listed or
called). Generated from the catalog by scripts/regen.py: do not edit."""

TOOL_NAMES: tuple[str, ...] = (
    "clevertap_connect",
    "clevertap_real_time_user_count",
    "clevertap_get_event_count",
    "clevertap_get_profile_count",
    "clevertap_get_events",
    "clevertap_get_events_by_cursor",
    "clevertap_get_user_profiles",
    "clevertap_get_user_profiles_by_cursor",
    "clevertap_upload_events",
    "clevertap_upload_user_profiles",
    "clevertap_upload_device_tokens",
    "clevertap_get_campaigns",
    "clevertap_get_campaign_report",
    "clevertap_create_campaign",
    "clevertap_stop_campaign",
    "clevertap_delete_user_profile",
    "clevertap_search_actions",
    "clevertap_run_action",
    "clevertap_request",
    "clevertap_get_trends",
    "clevertap_get_top_values",
    "clevertap_aggregate_events",
    "clevertap_describe_schema",
    "clevertap_get_user_profile",
    "clevertap_get_message_report",
)
# The Membrane popular actions the typed tools stand for.
POPULAR_ACTION_KEYS: tuple[str, ...] = (
    "real-time-user-count",
    "get-event-count",
    "get-profile-count",
    "get-events",
    "get-events-by-cursor",
    "get-user-profiles",
    "get-user-profiles-by-cursor",
    "upload-events",
    "upload-user-profiles",
    "upload-device-tokens",
    "get-campaigns",
    "get-campaign-report",
    "create-campaign",
    "stop-campaign",
    "delete-user-profile",
)
