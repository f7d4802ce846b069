"""A local server that emulates the four vendors' APIs, for the demo and every test.

Start it with `python manage.py run_sandbox --port 8025` (also started by `make run`), or in
Python with `start_sandbox()`. Point an account at it by its base URL: BASE_PATHS below, after
the sandbox's address (e.g. http://127.0.0.1:8025/octopush/v1/public).
"""

from providers.sandbox.devino import DevinoSandbox
from providers.sandbox.hyber import HyberSandbox
from providers.sandbox.mobtexting import MobtextingSandbox
from providers.sandbox.octopush import OctopushSandbox

VENDOR_CLASSES = (MobtextingSandbox, OctopushSandbox, DevinoSandbox, HyberSandbox)

# Path below the sandbox's address that stands for each vendor's real base URL.
BASE_PATHS = {
    "mobtexting": "/mobtexting/api/v2",
    "octopush": "/octopush/v1/public",
    "devino": "/devino",
    "hyber": "/hyber",
}

from providers.sandbox.server import SandboxServer, start_sandbox  # noqa: E402

__all__ = ["BASE_PATHS", "VENDOR_CLASSES", "SandboxServer", "start_sandbox"]
