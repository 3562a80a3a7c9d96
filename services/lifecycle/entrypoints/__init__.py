"""Entrypoints: the FastStream app (composition root) and the `leads` CLI."""
