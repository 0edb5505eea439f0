"""Load test (make load): see load/run.py."""
