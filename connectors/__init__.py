"""Connectors: plain-Python sources and destinations. Nothing in this package imports Dagster."""
