"""Contact, suppression and DLT template imports (placeholder until the imports work lands)."""
