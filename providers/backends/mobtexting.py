"""Mobtexting backend (placeholder until its module lands)."""

from providers.backends.base import Backend


class MobtextingBackend(Backend):
    kind = "mobtexting"
    label = "Mobtexting"
    max_recipients = 200
    default_frame_size = 200
