"""The example connector's table (examples/lead_table.py): each lead's latest version,
whichever of `leads.state` and `leads.events` brought it."""

from examples.lead_table import LeadTable


def test_the_table_keeps_the_latest_version_whatever_the_order_read() -> None:
    table = LeadTable()
    table.apply_state(b"l-1", b'{"lead_id": "l-1", "version": 3}')
    table.apply_event(b'{"lead_id": "l-1", "version": 2, "lead": {"lead_id": "l-1"}}')
    table.apply_event(b'{"lead_id": "l-1", "version": 4, "lead": {"lead_id": "l-1"}}')
    assert table.leads["l-1"] == {"lead_id": "l-1", "version": 4}
    table.apply_state(b"l-1", None)  # a tombstone
    assert table.leads == {}


def test_a_lead_deleted_for_good_is_not_brought_back_by_its_older_events() -> None:
    table = LeadTable()
    table.apply_state(b"l-2", b'{"lead_id": "l-2", "version": 2}')
    table.apply_state(b"l-2", None)  # its retention ended
    table.apply_event(b'{"lead_id": "l-2", "version": 2, "lead": {"lead_id": "l-2"}}')
    assert "l-2" not in table.leads
