"""A MongoDB lease: one holder at a time among replicas, taken over when it lapses."""

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.lifecycle.domain.clock import Clock


class MongoLease:
    """The `Lease` port on the `leases` collection: one document per lease name."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        name: str,
        holder: str,
        ttl: timedelta,
        clock: Clock,
    ) -> None:
        self._leases = database["leases"]
        self._name = name
        self._holder = holder
        self._ttl = ttl
        self._clock = clock
        self._held_until: datetime | None = None

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another holder's lease is live.
        Renews only past half its time, so a busy holder does not write on every call."""
        now = self._clock.now()
        if self._held_until is not None and now < self._held_until - self._ttl / 2:
            return True
        self._held_until = None
        try:
            held = await self._leases.find_one_and_update(
                {
                    "_id": self._name,
                    "$or": [{"holder": self._holder}, {"expires_at": {"$lte": now}}],
                },
                {"$set": {"holder": self._holder, "expires_at": now + self._ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # the upsert lost: the lease exists and is someone else's
        if held is None or held["holder"] != self._holder:
            return False
        self._held_until = now + self._ttl
        return True

    async def release(self) -> None:
        self._held_until = None
        await self._leases.update_one(
            {"_id": self._name, "holder": self._holder}, {"$set": {"expires_at": self._clock.now()}}
        )
