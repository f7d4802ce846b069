"""MOBtexting emulation: `MobtextingSandbox` (emulator.py, whose docstring lists what the sandbox does and
which control actions it has), the sending and pull desk (messages.py) and the registries (registries.py)."""

from providers.sandbox.mobtexting.emulator import MobtextingSandbox

__all__ = ["MobtextingSandbox"]
