"""API permissions (kept apart from config/api.py: DRF imports them while its views load)."""

from rest_framework import permissions


class StrictModelPermissions(permissions.DjangoModelPermissions):
    """DjangoModelPermissions that also requires the `view` permission to read."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }
