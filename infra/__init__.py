"""Deployment tooling (packaging, deploy helpers); not part of the Lambda bundle."""
