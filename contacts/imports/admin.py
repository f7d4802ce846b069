"""Admin for imports (placeholder)."""
