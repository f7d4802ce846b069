"""`manage.py run_sandbox`: serve the emulated vendor APIs on a local port until Ctrl-C."""

import os
import signal
import threading

from django.core.management.base import BaseCommand

from providers.sandbox import start_sandbox
from providers.sandbox.core import Knobs
from providers.sandbox.server import describe

# Knobs can also come from the environment: SANDBOX_LATENCY_MS=50 SANDBOX_RATE_429=0.1 …
ENV_PREFIX = "SANDBOX_"


class Command(BaseCommand):
    help = "Run the provider sandbox (MOBtexting, Octopush, Devino, Hyber emulations) on a local port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument(
            "--knob", action="append", default=[], metavar="NAME=VALUE",
            help="Set a knob, e.g. --knob rate_429=0.2 --knob dlr_delay=3 (see providers/sandbox/core.py Knobs).",
        )  # fmt: skip

    def handle(self, *args, host, port, knob, **options):
        knobs = Knobs()
        values = {k[len(ENV_PREFIX) :].lower(): v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        values = {k: v for k, v in values.items() if hasattr(knobs, k) and k != "url"}
        for item in knob:
            name, _, value = item.partition("=")
            values[name.strip()] = value.strip()
        if "dlr_mix" in values and isinstance(values["dlr_mix"], str):
            import json

            values["dlr_mix"] = json.loads(values["dlr_mix"])
        knobs.update(values)
        server = start_sandbox(host, port, knobs)
        self.stdout.write(f"Provider sandbox on {server.url}; account base URLs:\n{describe(server)}")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        server.stop()
        self.stdout.write("Sandbox stopped.")
