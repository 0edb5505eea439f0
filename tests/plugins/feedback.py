"""pytest fixtures for the feedback tests (owned by that area)."""
