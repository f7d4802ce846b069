"""REST API for imports (placeholder)."""


def register(router) -> None:
    """Add the imports viewset to the /api/v1/ router."""
