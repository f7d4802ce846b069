"""Devino backend (placeholder until its module lands)."""

from providers.backends.base import Backend


class DevinoBackend(Backend):
    kind = "devino"
    label = "Devino"
    max_recipients = 100
    default_frame_size = 100
