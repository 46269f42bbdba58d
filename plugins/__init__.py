"""Launchable activity types (modules, diagnostics, the final assessment), discovered as plugins."""
