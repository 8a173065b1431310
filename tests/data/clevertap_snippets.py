"""Example payloads of CleverTap's official snippets repository, transcribed for the sandbox replay test.

Source: github.com/CleverTap/clevertap-support-snippets (the examples embedded in developer.clevertap.com). Each
payload names its file. Fragments that are not JSON objects on their own (``"common_profile_properties": {...}``) are
wrapped in ``{}``; the upload examples lose their trailing commas and ``//`` comments (the files are not valid JSON as
published). Not transcribed: ``sample_token_mobile_payload.json`` and ``sample_token_chrome_payload.json`` (only
placeholders such as ``<Device Token>``; ``sample_token_payload_all.json`` has real values) and
``downloading_user_actions_example_request_payload.json`` (the events example again, after a stray ``m``).
"""

from __future__ import annotations

from typing import Any

Payload = dict[str, Any]

COMMON_PROPERTIES: Payload = {  # clevertap_query_language/examples/query_with_common_properties_request_payload.json
    "event_name": "Charged",
    "from": 20151010,
    "to": 20151011,
    "common_profile_properties": {
        "app_fields": [{"name": "Make", "operator": "contains", "value": "Apple"}],
        "profile_fields": [{"name": "language", "operator": "equals", "value": "en"}],
        "demographics": [
            {"name": "Education", "operator": "equals", "value": ["College", "Graduate"]},
            {"name": "Gender", "value": "Female"},
        ],
        "technographics": [
            {"name": "Device", "operator": "equals", "value": ["Mobile", "Tablet"]},
            {"name": "Platform", "value": "AndroidApp"},
        ],
        "reachability": [{"name": "has_token", "value": "True"}],
        "geo_fields": [["India", "Maharashtra", "Mumbai"], ["United States", "New York", "New York City"]],
        "geo_radius": [[35, 42.5, 5.2], [77.6, 76.2, 11]],
    },
}
DID_ALL: Payload = {  # clevertap_query_language/examples/query_with_did_all_block_request_payload.json
    "advanced_query": {
        "did_all": [
            {
                "event_name": "Charged",
                "from": 20151010,
                "to": 20151011,
                "event_properties": [{"name": "Feedback", "operator": "contains", "value": "excellent"}],
            },
            {"event_name": "App Launched", "from": 20151011, "to": 20151012, "operator": "equals", "value": 10},
        ]
    }
}
DID_ANY: Payload = {  # clevertap_query_language/examples/query_with_did_any_block_request_payload.json
    "advanced_query": {
        "did_any": {
            "any_events": [
                {
                    "event_name": "Charged",
                    "from": 20151010,
                    "to": 20151011,
                    "event_properties": [{"name": "Amount", "operator": "equals", "value": 100}],
                },
                {"event_name": "App Launched", "from": 20151011, "to": 20151012},
            ],
            "operator": "equals",
            "value": 10,
        }
    }
}
DID_NONE: Payload = {  # clevertap_query_language/examples/query_with_did_none_block_request_payload.json
    "advanced_query": {
        "did_none": [
            {
                "event_name": "Charged",
                "from": 20151010,
                "to": 20151011,
                "event_properties": [{"name": "Amount", "operator": "equals", "value": 100}],
            },
            {"event_name": "App Launched", "from": 20151011, "to": 20151012},
        ]
    }
}
EVENT_SESSION: Payload = {  # clevertap_query_language/examples/query_with_event_session_properties_request_payload.json
    "event_name": "choseNewFavoriteFood",
    "event_properties": [{"name": "value", "operator": "contains", "value": "pizza"}],
    "session_properties": [{"name": "first_time", "value": "True"}],
    "from": 20150810,
    "to": 20151025,
}
HYBRID: Payload = {  # clevertap_query_language/examples/sample_hybrid_query_request_payload.json
    "event_name": "Charged",
    "from": 20151010,
    "to": 20151011,
    "event_properties": [{"name": "Amount", "operator": "equals", "value": 100}],
    "common_profile_properties": {"profile_fields": [{"name": "language", "operator": "equals", "value": "fr"}]},
    "advanced_query": {
        "did_none": [
            {"event_name": "App Uninstalled", "from": 20151010, "to": 20151011},
            {"event_name": "UTM Visited", "from": 20151010, "to": 20151011},
        ],
        "did_any": {
            "any_events": [
                {
                    "event_name": "Added To Cart",
                    "from": 20150911,
                    "to": 20151011,
                    "event_properties": [{"name": "Product name", "operator": "equals", "value": "Model S"}],
                },
                {"event_name": "App Launched", "from": 20151010, "to": 20151011},
            ],
            "operator": "equals",
            "value": 10,
        },
    },
}
# getting_started/api/query_language_example_common_property_*_filter.json (fragments, wrapped in {})
CPP_FRAGMENTS: dict[str, Payload] = {
    "app_fields": {
        "common_profile_properties": {"app_fields": [{"name": "Make", "operator": "contains", "value": "Apple"}]}
    },
    "demographics": {
        "common_profile_properties": {
            "demographics": [
                {"name": "Education", "operator": "equals", "value": ["College", "Graduate"]},
                {"name": "Gender", "value": "Female"},
            ]
        }
    },
    "geo_fields": {
        "common_profile_properties": {
            "geo_fields": [["India", "Maharashtra", "Mumbai"], ["United States", "New York", "New York City"]]
        }
    },
    "geo_radius": {"common_profile_properties": {"geo_radius": [[35, 42.5, 5.2], [77.6, 76.2, 11]]}},
    "profile_field": {
        "common_profile_properties": {"profile_fields": [{"name": "language", "operator": "equals", "value": "en"}]}
    },
    "reachability": {"common_profile_properties": {"reachability": [{"name": "has_token", "value": "True"}]}},
    "technographics": {
        "common_profile_properties": {
            "technographics": [
                {"name": "Device", "operator": "equals", "value": ["Mobile", "Tablet"]},
                {"name": "Platform", "value": "AndroidApp"},
            ]
        }
    },
}
EVENT_PROPERTY: Payload = {  # getting_started/api/query_language_example_event_property_filter.json
    "event_name": "choseNewFavoriteFood",
    "event_properties": [{"name": "value", "operator": "contains", "value": "pizza"}],
    "from": 20150810,
    "to": 20151025,
}
SESSION_PROPERTY: Payload = {  # getting_started/api/query_language_example_session_property_filter.json
    "event_name": "choseNewFavoriteFood",
    "session_properties": [
        {"name": "first_time", "value": "True"},
        {"name": "time_of_day", "value": ["22:30", "22:35"]},
    ],
    "from": 20150810,
    "to": 20151025,
}
DOWNLOAD_EVENTS: Payload = {  # getting_started/api/downloading_user_events_example_request_payload.json
    "event_name": "choseNewFavoriteFood",
    "props": [{"name": "value", "operator": "contains", "value": "piz"}],
    "from": 20150810,
    "to": 20151025,
}
UPLOAD_EVENTS: Payload = {  # getting_started/api/uploading_user_events_example_request_payload.json
    "d": [
        {
            "FBID": "34322423",
            "ts": 1419401442,
            "type": "event",
            "evtName": "Product viewed",
            "evtData": {
                "Product name": "Casio Chronograph Watch",
                "Category": "Mens Watch",
                "Price": 59.99,
                "Currency": "USD",
            },
        },
        {
            "identity": "jack@gmail.com",
            "ts": 1419411212,
            "type": "event",
            "evtName": "Charged",
            "evtData": {
                "Amount": 300,
                "Currency": "USD",
                "Payment mode": "Credit Card",
                "Items": [
                    {"Category": "books", "Book name": "The millionaire next door", "Quantity": 1},
                    {"Category": "books", "Book name": "Achieving inner zen", "Quantity": 4},
                ],
            },
        },
    ]
}
UPLOAD_PROFILES: Payload = {  # getting_started/api/uploading_user_profiles_example_request_payload.json
    "d": [
        {
            "identity": "1189549",
            "ts": 1468308340,
            "type": "profile",
            "profileData": {
                "Name": "Jack Montana",
                "Email": "jack@gmail.com",
                "Phone": "+14155551234",
                "Gender": "M",
                "Employed": "Y",
                "Education": "Graduate",
                "Married": "Y",
                "DOB": "$D_1487576752",
                "Customer Type": "Platinum",
            },
        }
    ]
}
_TOKEN = "frfsgvrwe:APfdsafsgdfsgghfgfgjkhfsfgdhjhbvcvnetry767456fxsasdf"
UPLOAD_TOKENS: Payload = {  # getting_started/api/sample_token_payload_all.json
    "d": [
        {
            "type": "token",
            "tokenData": {
                "id": _TOKEN,
                "type": "chrome",
                "keys": {
                    "p256dh": "BLc4xRzKlKORKWlbdgFaBrrPK3ydWAHo4M0gs0i1oEKgPpWC5cW8OCzVrOQRv-1npXRWk8ud"
                    "nW3oYhIO4475rds=",
                    "auth": "5I2Bu2oKdyy9CwL8QVF0NQ==",
                },
            },
            "objectId": "QBOpVJZmKilRAzfaiVS86Tovxm75lHxg",
        },
        {
            "type": "token",
            "tokenData": {
                "id": "dYfuuBmHLGI:APA91bEfAq1b6NAmz0uhUbVxwSLqgKF25zDb7vhgajzS-bOAEUKekH_jbzO5oU1Qip-ZLvDpwKcc"
                "xAxVNjC3rUUJnFTKDUiBcF9AtuG03_PRfjoUxLKHMR9qykK22SiubrLirNzQtNnO",
                "type": "fcm",
            },
            "objectId": "__gc4grg4053N1eYkW6OBH71jhFev7b1iP",
        },
        {"type": "token", "tokenData": {"id": _TOKEN, "type": "gcm"}, "objectId": "__QlXHaDHBZxZPLEMpPo6VvwdZ7FnbGvWA"},
        {"type": "token", "tokenData": {"id": _TOKEN, "type": "apns"}, "objectId": "-HwB9gZWb3RcKhXCQ222FhAhkjeYQs0Hj"},
        {"type": "token", "tokenData": {"id": _TOKEN, "type": "wns"}, "objectId": "~9XrS4Dy6GsnDbdX98Ijs63kEtJDQbhJA"},
        {"type": "token", "tokenData": {"id": _TOKEN, "type": "mpns"}, "objectId": "~y9MqjkDGRfbzwwH8fZI6LIXgTKaEPxHr"},
    ]
}
NOW: Payload = {  # getting_started/api/sample_now_request.json
    "user_type": True,
    "session_source": True,
    "browser": True,
    "os": True,
    "device": True,
    "new": True,
}
TRENDS: Payload = {  # getting_started/api/sample_trends_request.json
    "event_name": "UTM Visited",
    "from": 20161224,
    "to": 20170103,
    "unique": False,
    "groups": {"foo": {"trend_type": "daily"}, "bar": {"trend_type": "weekly"}, "foobar": {"trend_type": "monthly"}},
}
TOP: Payload = {  # getting_started/api/sample_top_request.json
    "event_name": "Charged",
    "from": 20161229,
    "to": 20170129,
    "groups": {
        "foo": {"property_type": "event_properties", "name": "Amount"},
        "bar": {"property_type": "profile_fields", "name": "Customer Type", "top_n": 2, "order": "asc"},
    },
}
_WHERE: Payload = {
    "event_name": "Charged",
    "from": 20171001,
    "to": 20171220,
    "common_profile_properties": {
        "profile_fields": [{"name": "Customer Type", "operator": "equals", "value": "Platinum"}]
    },
}
CAMPAIGN_PUSH: Payload = {  # getting_started/api/sending_push_notifications_example_request_payload.json
    "name": "My API Campaign",
    "estimate_only": True,
    "where": {
        "event_name": "App Launched",
        "from": 20150101,
        "to": 20150303,
        "common_profile_properties": {"profile_fields": [{"Key": "Customer Type", "value": "Platinum"}]},
    },
    "content": {
        "title": "Hi!",
        "body": "How are you doing today?",
        "platform_specific": {
            "windows": {"deep_link": "example.com", "Key": "Value_windows"},
            "ios": {
                "deep_link": "example.com",
                "sound_file": "example.caf",
                "category": "application category//Books",
                "badge_count": 1,
                "Key": "Value_ios",
            },
            "android": {
                "background_image": "http://example.jpg",
                "default_sound": True,
                "deep_link": "example.com",
                "Key": "Value_android",
            },
        },
    },
    "devices": ["android", "ios", "windows"],
    "when": "now",
}
CAMPAIGN_EMAIL: Payload = {  # getting_started/api/sending_email_example_request_payload.json
    "name": "My Email API campaign",
    "estimate_only": True,
    "target_mode": "email",
    "provider_nick_name": "Provider 1",
    "labels": ["onboarding", "first"],
    "where": _WHERE,
    "respect_frequency_caps": False,
    "content": {"subject": "Welcome", "body": "<div>Your HTML content for the email</div>", "sender_name": "CleverTap"},
    "when": "now",
}
CAMPAIGN_SMS: Payload = {  # getting_started/api/sending_sms_example_request_payload.json
    "name": "My Sms API campaign",
    "estimate_only": True,
    "target_mode": "sms",
    "provider_nick_name": "Provider 1",
    "labels": ["onboarding", "marketing"],
    "where": _WHERE,
    "respect_frequency_caps": False,
    "content": {"body": "Sms body"},
    "when": "now",
}
_CHROME = {
    "image": "https://www.exampleImage.com",
    "icon": "https://www.exampleIcon.com",
    "deep_link": "http://www.example.com",
    "ttl": 10,
    "require_interaction": True,
    "cta_title1": "title",
    "cta_link1": "http://www.example2.com",
    "cta_iconlink1": "https://www.exampleIcon2.com",
}
CAMPAIGN_WEBPUSH: Payload = {  # getting_started/api/sending_webpush_notifications_example_request_payload.json
    "name": "My Webpush API campaign",
    "estimate_only": True,
    "target_mode": "webpush",
    "labels": ["onboarding"],
    "where": _WHERE,
    "respect_frequency_caps": False,
    "content": {"title": "Hi!", "body": "How are you doing today?", "platform_specific": {"chrome": _CHROME}},
    "when": "now",
}
CAMPAIGN_RESULT: Payload = {
    "id": 1457432766
}  # view_statistics_of_push_notification_campaigns_example_request_payload.json
_TO = {
    "FBID": ["102029292929388", "114342342453463"],
    "GPID": ["1928288389299292"],
    "Email": ["john@doe.com", "jane@doe.com"],
    "Identity": ["JohnDoe"],
    "objectId": ["_asdnkansdjknaskdjnasjkndja", "-adffajjdfoaiaefiohnefwprjf"],
}
_PUSH_CONTENT: dict[str, Any] = {
    "title": "Welcome",
    "body": "Hello world!",
    "platform_specific": {
        "windows": {"deep_link": "example.com", "key": "value_windows"},
        "ios": {
            "deep_link": "example.com",
            "sound_file": "example.caf",
            "category": "notification category",
            "badge_count": 1,
            "key": "value_ios",
        },
        "android": {
            "background_image": "http://example.jpg",
            "default_sound": True,
            "deep_link": "example.com",
            "large_icon": "http://example.png",
            "key": "value_android",
        },
    },
}
_PUSH_CONTENT_V1 = {  # the same without android.large_icon
    **_PUSH_CONTENT,
    "platform_specific": {
        **_PUSH_CONTENT["platform_specific"],
        "android": {
            "background_image": "http://example.jpg",
            "default_sound": True,
            "deep_link": "example.com",
            "key": "value_android",
        },
    },
}
_EMAIL_CONTENT = {
    "subject": "Welcome",
    "body": "<div>Your HTML content for the email</div>",
    "sender_name": "CleverTap",
}
SEND: dict[str, tuple[str, Payload]] = {
    # getting_started/api/sending_push_by_identity_sample_request_payload.json (POST /1/send/push.json)
    "push_by_identity": ("push", {"to": _TO, "respect_frequency_caps": False, "content": _PUSH_CONTENT_V1}),
    # getting_started/api/sending_push_by_identity_sample_request_payload_email.json: the legacy email shape
    "legacy_email": (
        "email",
        {"to": _TO, "tag_group": "my tag group", "respect_frequency_caps": False, "content": _EMAIL_CONTENT},
    ),
    # getting_started/api/sending_message_by_identity_sample_request_payload_email.json
    "email": (
        "email",
        {
            "to": _TO,
            "tag_group": "my tag group",
            "respect_frequency_caps": False,
            "provider_nick_name": "Provider 1",
            "content": _EMAIL_CONTENT,
        },
    ),
    # getting_started/api/sending_message_by_identity_sample_request_payload_push.json
    "push": (
        "push",
        {"to": _TO, "tag_group": "my tag group", "respect_frequency_caps": False, "content": _PUSH_CONTENT},
    ),
    # getting_started/api/sending_message_by_identity_sample_request_payload_sms.json
    "sms": (
        "sms",
        {
            "to": _TO,
            "tag_group": "my tag group",
            "provider_nick_name": "Provider 1",
            "respect_frequency_caps": False,
            "content": {"body": "Sms body"},
        },
    ),
    # getting_started/api/sending_message_by_identity_sample_request_payload_webpush.json
    "webpush": (
        "webpush",
        {
            "to": _TO,
            "tag_group": "my tag group",
            "respect_frequency_caps": False,
            "content": {"title": "Hi!", "body": "How are you doing today?", "platform_specific": {"chrome": _CHROME}},
        },
    ),
}
