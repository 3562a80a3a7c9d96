"""Lifecycle service: decodes inbound messages, applies the lead rules, commits
state, dedupe marker and outgoing messages in one MongoDB transaction."""
