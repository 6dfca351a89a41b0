"""Numbered SQL migrations, applied in order by gateway_core.migrate."""
