"""Installed distributions: RECORD, metadata, requirements, and installing a wheel."""
