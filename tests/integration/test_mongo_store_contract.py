"""The store contract (tests/store_contract.py) on MongoDB: the same cases as the
in-memory store passes, so that tests on either say the same of the service."""

import pytest
from pymongo.errors import BulkWriteError

from services.lifecycle.adapters.mongo import MongoStore
from tests.store_contract import ContractStore, StoreContract


class TestMongoStore(StoreContract):
    write_error = BulkWriteError

    @pytest.fixture
    def store(self, store: MongoStore) -> ContractStore:
        """The integration conftest's store, as the contract sees it."""
        return store
