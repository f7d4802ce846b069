"""Campaign business logic, one module per concern; import from here.

editing    create, update, duplicate and delete campaigns (the API's and the admin's rules)
lifecycle  launch, send now, unschedule, pause, resume, cancel, fail, expire, complete
prepare    audience → messages → frames (set-based)
dispatch   claim, send, record frames
recovery   reconcile frames whose answer was lost
reports    store and apply delivery reports and opt-outs; polling; report-window expiry
schedule   due and recurring launches, dispatcher watchdog, send-by deadlines
side_by_side  statements spread over threads, each on its own connection
transactional  one-off messages (OTP)
send_test  a draft or scheduled campaign's message to a few numbers before launch, through transactional
background the heartbeat of beat and the workers (what selectors.background reads)
"""

from campaigns.services.background import background_beat_record, background_heartbeat_record
from campaigns.services.dispatch import campaign_dispatch, frame_dispatch
from campaigns.services.editing import campaign_duplicate
from campaigns.services.lifecycle import (
    campaign_cancel,
    campaign_complete_if_done,
    campaign_fail,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_send_now,
    campaign_unschedule,
)
from campaigns.services.prepare import campaign_prepare
from campaigns.services.reports import (
    messages_expire_unreported,
    status_events_apply,
    status_events_apply_all,
    status_events_store,
    status_poll,
)
from campaigns.services.schedule import (
    campaigns_expire_overdue,
    campaigns_hold_outside_window,
    campaigns_launch_due,
    dispatchers_watchdog,
)
from campaigns.services.send_test import campaign_send_test
from campaigns.services.transactional import (
    idempotency_keys_expire,
    message_send_transactional,
    message_send_transactional_once,
)

__all__ = [
    "background_beat_record",
    "background_heartbeat_record",
    "campaign_cancel",
    "campaign_complete_if_done",
    "campaign_dispatch",
    "campaign_duplicate",
    "campaign_fail",
    "campaign_launch",
    "campaign_pause",
    "campaign_prepare",
    "campaign_resume",
    "campaign_send_now",
    "campaign_send_test",
    "campaign_unschedule",
    "campaigns_expire_overdue",
    "campaigns_hold_outside_window",
    "campaigns_launch_due",
    "dispatchers_watchdog",
    "frame_dispatch",
    "idempotency_keys_expire",
    "message_send_transactional",
    "message_send_transactional_once",
    "messages_expire_unreported",
    "status_events_apply",
    "status_events_apply_all",
    "status_events_store",
    "status_poll",
]
