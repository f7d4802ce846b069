"""Octopush backend (placeholder until its module lands)."""

from providers.backends.base import Backend


class OctopushBackend(Backend):
    kind = "octopush"
    label = "Octopush"
    max_recipients = 500
    default_frame_size = 500
