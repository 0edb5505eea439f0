"""pytest fixtures for the browser tests (owned by that area)."""
