"""The store contract (tests/store_contract.py) on the in-memory store: no servers."""

import pytest

from services.lifecycle.adapters.memory import DuplicateDocument, InMemoryStore
from services.lifecycle.domain.clock import SystemClock
from tests.store_contract import SUBJECT_KEYS, ContractStore, StoreContract


class TestInMemoryStore(StoreContract):
    write_error = DuplicateDocument

    @pytest.fixture
    def store(self) -> ContractStore:
        return InMemoryStore(SystemClock(), subject_keys=SUBJECT_KEYS)
