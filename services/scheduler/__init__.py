"""The deadline worker: sweeps due deadlines and emits them as commands."""
