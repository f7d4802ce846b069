"""MOBtexting (India, DLT): the backend, its status vocabulary, HTTP plumbing and registry calls.

backend.py reads top to bottom as STYLE §4 describes; statuses.py holds STATUS_MAP and ERROR_CODES.
"""

from providers.backends.mobtexting.backend import DEFAULT_BASE_URL, MobtextingBackend, verification_token
from providers.backends.mobtexting.statuses import ERROR_CODES, STATUS_MAP, classify

__all__ = ["DEFAULT_BASE_URL", "ERROR_CODES", "STATUS_MAP", "MobtextingBackend", "classify", "verification_token"]
