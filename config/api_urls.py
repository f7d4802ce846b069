"""One router for /api/v1/: each app registers its viewsets in its own api.py `register(router)`."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from campaigns import api as campaigns_api
from config.views import TokenView
from contacts import api as contacts_api
from contacts.imports import api as imports_api
from providers import api as providers_api

router = DefaultRouter()
contacts_api.register(router)
imports_api.register(router)
providers_api.register(router)
campaigns_api.register(router)

urlpatterns = [path("auth/token/", TokenView.as_view(), name="api-token"), *router.urls]
