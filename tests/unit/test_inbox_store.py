"""The inbox contract (tests/store_contract.py) on the in-memory store: no servers."""

import pytest

from services.lifecycle.adapters.memory import InMemoryInbox, InMemoryStore
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.service_layer.inbox import InboxReader
from tests.store_contract import InboxContract


class TestInMemoryInbox(InboxContract):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore(SystemClock())

    @pytest.fixture
    def inbox(self, store: InMemoryStore) -> InboxReader:
        return InMemoryInbox(store)
