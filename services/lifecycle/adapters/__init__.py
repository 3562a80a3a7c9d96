"""Adapters at the edges: MongoDB storage and outbox, Kafka admin and publishing."""
