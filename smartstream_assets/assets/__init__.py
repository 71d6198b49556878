"""Thin Dagster wrappers around the pure logic: ingestion, the ML roles, cleanup, the vitals extras."""
