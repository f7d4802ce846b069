"""Mobtexting emulation (placeholder until its module lands)."""

from providers.sandbox.core import SandboxRequest, SandboxResponse, VendorEmulator, json_response


class MobtextingSandbox(VendorEmulator):
    name = "mobtexting"
    prefix = "/mobtexting"

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(501, {"message": "not emulated yet"})
