"""Control a sandbox running in another process (make run, the demo, benchmarks) over HTTP."""

from typing import Any

import requests


class SandboxClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def configure(self, **knobs: Any) -> dict:
        return self._post("config", knobs)

    def reset(self) -> dict:
        return self._post("reset", {})

    def stats(self) -> dict:
        response = requests.get(f"{self.url}/_sandbox/stats", timeout=10)
        response.raise_for_status()
        return response.json()

    def vendor(self, vendor: str, action: str, **body: Any) -> dict:
        """A vendor-specific setting, e.g. vendor("octopush", "callbacks", api_login=…, dlr_url=…)."""
        return self._post(f"{vendor}/{action}", body)

    def _post(self, path: str, body: dict) -> dict:
        response = requests.post(f"{self.url}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def console_settings(self, account) -> None:
        """What a real vendor keeps in its web console, set on the sandbox for one account:
        Octopush's delivery-report and STOP callback URLs."""
        if account.kind == "octopush":
            login = account.credentials.get("login", "")
            self.vendor(
                "octopush", "callbacks", api_login=login, dlr_url=account.webhook_url, stop_url=account.webhook_url
            )
