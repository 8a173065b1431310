"""The tool names, without importing the tools: start-up checks --tools/--exclude-tools against this list and
imports the catalog (about 50 ms of pydantic model building) only when a tool is first listed or called.
A test keeps it equal to the catalog."""

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
    "clevertap_get_user_profile",
    "clevertap_get_message_report",
)
