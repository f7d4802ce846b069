"""Create the `admin` superuser once: password from HERALD_ADMIN_PASSWORD, or a generated one printed once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the 'admin' superuser unless it exists (password from HERALD_ADMIN_PASSWORD, else generated)."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(username=USERNAME).exists():
            self.stdout.write(f"The user '{USERNAME}' exists already; its password is kept.")
            return
        given = os.environ.get("HERALD_ADMIN_PASSWORD", "")
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(USERNAME, email="admin@herald.local", password=password)
        if given:
            self.stdout.write(self.style.SUCCESS(f"Created the superuser '{USERNAME}' with HERALD_ADMIN_PASSWORD."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created the superuser '{USERNAME}'. Its password, shown only this once:\n\n"
                    f"    {password}\n\n"
                    "Note it, or set HERALD_ADMIN_PASSWORD before the first run."
                )
            )
