"""Devino emulation (placeholder until its module lands)."""

from providers.sandbox.core import SandboxRequest, SandboxResponse, VendorEmulator, json_response


class DevinoSandbox(VendorEmulator):
    name = "devino"
    prefix = "/devino"

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(501, {"message": "not emulated yet"})
