"""Reads about campaigns; import from here.

estimate   the estimate and pre-flight checks, the promotional window
progress   live progress, the delivery funnel, failures in words, the CSV export
composer   the composer's choices, a contact's message history, a campaign's tests
records    messages, frames and delivery reports found by a value typed whole; a campaign's messages by their ids;
           how many a campaign has
background whether a worker and beat run (their heartbeat), for the admin and /healthz?background=1
"""

from campaigns.selectors.background import BackgroundStatus, background_status
from campaigns.selectors.composer import (
    campaign_test_sends,
    composer_account_channels,
    composer_senders,
    composer_templates,
    composer_variables,
    contact_message_history,
)
from campaigns.selectors.estimate import (
    TEMPLATE_OF_ANOTHER_ACCOUNT,
    Estimate,
    PartsSpread,
    Problem,
    account_promotional_window,
    campaign_audience_spec,
    campaign_estimate,
    campaign_first_recipient,
    campaign_frame_size,
    campaign_preflight,
    estimate_fills_sample,
    message_problems,
    parts_spread_of,
    promotional_window_closed_until,
    promotional_window_opening,
    recipient_window_opening,
    send_window_opening,
    suppression_services,
)
from campaigns.selectors.progress import (
    DELIVERED_STATUSES,
    FAILURE_STATUSES,
    FAILURES_SHOWN,
    IN_FLIGHT_STATUSES,
    LISTED_STATUS_CHOICES,
    LIVE_STATES,
    MESSAGE_CSV_COLUMNS,
    MESSAGE_CSV_OUTSIDE_TEXT,
    NOT_SENT_SHOWN,
    SENDING,
    SHOWN_STATUS_CHOICES,
    STATUS_ORDER,
    TAKEN_STATUSES,
    campaign_funnel,
    campaign_message_rows,
    campaign_progress,
    campaign_stats,
    counts_listed,
    delivery_rate,
    delivery_rate_of,
    failure_words,
    listed_status,
    listed_status_query,
    messages_shown,
    messages_with_status,
    state_reason_shown,
)
from campaigns.selectors.records import (
    campaign_records_counts,
    frames_matching,
    message_id_last,
    messages_matching,
    messages_of_campaign,
    status_events_matching,
)

__all__ = [
    "DELIVERED_STATUSES", "FAILURE_STATUSES", "FAILURES_SHOWN", "IN_FLIGHT_STATUSES", "LISTED_STATUS_CHOICES", "LIVE_STATES", "MESSAGE_CSV_COLUMNS", "MESSAGE_CSV_OUTSIDE_TEXT", "NOT_SENT_SHOWN",
    "SENDING", "SHOWN_STATUS_CHOICES", "STATUS_ORDER", "TAKEN_STATUSES", "TEMPLATE_OF_ANOTHER_ACCOUNT", "BackgroundStatus", "Estimate", "PartsSpread", "Problem", "account_promotional_window",
    "background_status", "campaign_audience_spec", "campaign_estimate", "campaign_first_recipient", "campaign_frame_size", "campaign_funnel", "campaign_message_rows",
    "campaign_preflight", "campaign_progress", "campaign_records_counts", "campaign_stats", "counts_listed", "campaign_test_sends", "composer_account_channels", "composer_senders",
    "composer_templates", "composer_variables", "contact_message_history", "delivery_rate", "delivery_rate_of", "estimate_fills_sample", "failure_words", "frames_matching", "listed_status", "listed_status_query",
    "message_id_last", "message_problems", "messages_matching", "messages_of_campaign", "parts_spread_of", "messages_shown", "messages_with_status", "promotional_window_closed_until", "promotional_window_opening",
    "recipient_window_opening", "send_window_opening", "state_reason_shown", "status_events_matching", "suppression_services",
]  # fmt: skip
