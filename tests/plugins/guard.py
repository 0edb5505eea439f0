"""pytest fixtures for the guard tests (owned by that area)."""
