"""Derived ids stay exactly what consumers already stored: RFC 4122 version-5 UUIDs."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.lifecycle.domain.ids import derived_uuid

NAMESPACE = uuid.UUID("8d6f7f0e-3b2a-4c39-9a53-6a1b2f0c5e11")


@given(st.text())
def test_a_derived_id_is_the_uuid5_of_its_name(name: str) -> None:
    assert derived_uuid(NAMESPACE, name) == str(uuid.uuid5(NAMESPACE, name))
