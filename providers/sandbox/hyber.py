"""Hyber emulation (placeholder until its module lands)."""

from providers.sandbox.core import SandboxRequest, SandboxResponse, VendorEmulator, json_response


class HyberSandbox(VendorEmulator):
    name = "hyber"
    prefix = "/hyber"

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(501, {"message": "not emulated yet"})
