from tests.providers.backends.harness import harness, scripted_vendor  # noqa: F401  (fixtures)
