"""`manage.py setup_accounts`: prepare every active account at its vendor (make run calls it).

Creates what each vendor needs once (Devino's scenario task, MOBtexting's webhook and
subscriptions). With --sandbox URL, accounts pointing at that sandbox also get the settings a
real vendor keeps in its web console (Octopush's callback URLs).
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from providers.models import ProviderAccount
from providers.sandbox.client import SandboxClient
from providers.services import provider_account_setup


class Command(BaseCommand):
    help = "Create vendor-side resources (webhooks, scenario tasks) for every active provider account."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox", default="", help="The sandbox's URL, to configure its console settings too.")

    def handle(self, *args, sandbox, **options):
        client = SandboxClient(sandbox) if sandbox else None
        for account in ProviderAccount.objects.filter(is_active=True):
            if client and account.base_url.startswith(sandbox):
                client.console_settings(account)
            try:
                stored = provider_account_setup(account=account)
            except ValidationError as exc:
                self.stderr.write(f"{account.name}: {'; '.join(exc.messages)}")
                continue
            self.stdout.write(f"{account.name}: ready{' (' + ', '.join(stored) + ')' if stored else ''}")
