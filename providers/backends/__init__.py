"""Provider backends, one module per vendor, registered by kind.

A new vendor is one module here plus its emulation in providers/sandbox/, nothing else.
"""

from providers.backends.base import Backend
from providers.backends.devino import DevinoBackend
from providers.backends.hyber import HyberBackend
from providers.backends.mobtexting import MobtextingBackend
from providers.backends.octopush import OctopushBackend

_CLASSES: tuple[type[Backend], ...] = (MobtextingBackend, OctopushBackend, DevinoBackend, HyberBackend)
BACKENDS: dict[str, type[Backend]] = {cls.kind: cls for cls in _CLASSES}
assert len(BACKENDS) == len(_CLASSES), "two backends share a kind"

_instances: dict[str, Backend] = {}


def get_backend(kind: str) -> Backend:
    """The backend instance for a kind ('mobtexting', 'octopush', 'devino', 'hyber')."""
    if kind not in _instances:
        try:
            _instances[kind] = BACKENDS[kind]()
        except KeyError:
            raise KeyError(f"No provider backend for kind {kind!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return _instances[kind]
