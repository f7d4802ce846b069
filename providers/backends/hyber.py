"""Hyber backend (placeholder until its module lands)."""

from providers.backends.base import Backend


class HyberBackend(Backend):
    kind = "hyber"
    label = "Hyber"
    max_recipients = 1
    default_frame_size = 1
