"""Issue 26 on the Leads page, in a real headless Chromium against a real `leads serve`:
a partner takes its decline back while the window lasts, sees which deals have gone
idle (idle longest first), and marks one still active; the history says who did what."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect

from contracts.topics import Topic
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.browser.test_leads_page import (
    WAIT_MS,
    open_lead,
    partner_with,
    row,
    signed_in,
)
from tests.e2e.drivers import Upstream

IDLE = re.compile("^Idle")


async def lead_ids(upstream: Upstream, partner: str) -> dict[str, str]:
    """The partner's leads' ids, by company."""
    leads = (await upstream.api.get("/v1/leads", partner)).json()["items"]
    return {lead["customer"]["company_name"]: lead["lead_id"] for lead in leads}


async def accepted(upstream: Upstream, partner: str, *ids: str) -> None:
    for lead_id in ids:
        action = messages.action(lead_id, "accept", partner_id=partner)
        await upstream.send(Topic.PARTNER_ACTIONS, action)
    await upstream.until(
        lambda o: all("lead.accepted" in o.event_types(i) for i in ids), what="deals accepted"
    )


async def unmoved_since(settings: Settings, lead_id: str, since: datetime) -> None:
    """As if the deal had not moved since `since`: the service runs on the system's
    clock, so its last move is put back in time where the service keeps it, as a new
    version (an action decided on the version the service remembers is decided again)."""
    client: Any = connect(settings.mongodb_uri)
    try:
        leads = client[settings.mongodb_database]["leads"]
        moved = {"$set": {"idle_since": since}, "$inc": {"version": 1}}
        found = await leads.update_one({"_id": lead_id}, moved)
        assert found.matched_count == 1
    finally:
        await client.close()


async def test_a_decline_is_taken_back_from_the_page_while_its_window_lasts(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Quarry Quartz"})
    await signed_in(page, upstream, partner)
    await open_lead(page, "Quarry Quartz")
    detail = page.locator(".detail")
    await detail.get_by_role("button", name="Decline", exact=True).click()
    await page.get_by_label("Reason").select_option(label="Timeline too short")
    await page.get_by_role("button", name="Decline lead").click()
    await expect(page.get_by_text("Lead declined")).to_be_visible(timeout=WAIT_MS)
    await expect(row(page, "Quarry Quartz")).to_contain_text("Declined")

    # LEADS_UNDO_WINDOW is 7 days: a few seconds gone, 7 days rounded up are left.
    undo = detail.get_by_role("button", name="Undo decline (7 d left)", exact=True)
    await undo.click()
    await expect(detail.get_by_text("Decline taken back")).to_be_visible(timeout=WAIT_MS)
    await expect(row(page, "Quarry Quartz")).to_contain_text("left")  # to answer again
    await expect(detail.get_by_role("button", name="Accept", exact=True)).to_be_visible()
    await expect(detail.get_by_role("button", name=re.compile("^Undo decline"))).to_have_count(0)
    history = detail.locator(".history")
    await expect(history).to_contain_text("Referrer sent the lead")
    await expect(history).to_contain_text("(Referrals admin) declined the lead")
    await expect(history).to_contain_text("(Referrals admin) took the decline back")
    lead_id = (await lead_ids(upstream, partner))["Quarry Quartz"]
    found = (await upstream.api.get(f"/v1/leads/{lead_id}", partner)).json()
    assert (found["stage"], found["undo_until"]) == ("received", None)


async def test_an_idle_deal_is_listed_first_with_its_days_until_marked_still_active(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Rapid Rail"}, {"company": "Summit Solar"})
    ids = await lead_ids(upstream, partner)
    idle, fresh = ids["Rapid Rail"], ids["Summit Solar"]
    await accepted(upstream, partner, idle, fresh)
    await unmoved_since(upstream.settings, idle, datetime.now(UTC) - timedelta(days=16, hours=1))

    await signed_in(page, upstream, partner)
    await page.get_by_label("Sort").select_option(label="Idle longest")
    await expect(page.locator(".lead")).to_have_count(2)
    await expect(page.locator(".lead").first).to_contain_text("Rapid Rail")
    await expect(row(page, "Rapid Rail").get_by_text("Idle 16 d", exact=True)).to_be_visible()
    await expect(row(page, "Summit Solar").get_by_text(IDLE)).to_have_count(0)

    await open_lead(page, "Rapid Rail")
    detail = page.locator(".detail")
    await expect(detail.get_by_text("Idle 16 d", exact=True)).to_be_visible()
    await detail.get_by_role("button", name="Still active", exact=True).click()
    await expect(detail.get_by_text("Noted: the deal is active")).to_be_visible(timeout=WAIT_MS)
    await expect(detail.get_by_text(IDLE)).to_have_count(0)
    await expect(row(page, "Rapid Rail").get_by_text(IDLE)).to_have_count(0)
    await expect(page.locator(".lead").last).to_contain_text("Rapid Rail")  # idle the shortest
    await expect(detail.locator(".history")).to_contain_text(
        "(Referrals admin) logged work on the deal"
    )
    found = (await upstream.api.get(f"/v1/leads/{idle}", partner)).json()
    assert [(a["kind"], a["summary"]) for a in found["activities"]] == [("note", "Still active")]


async def test_the_history_names_the_system_for_what_the_service_did(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(
        upstream, {"company": "Tidal Tiles", "received_at": messages.overdue()}
    )
    lead_id = (await lead_ids(upstream, partner))["Tidal Tiles"]
    # What the scheduler sends once the lead's time to answer is up.
    await upstream.send(Topic.COMMANDS, messages.command(lead_id, "expire"))
    await upstream.until(lambda o: "lead.expired" in o.event_types(lead_id), what="expired")

    await signed_in(page, upstream, partner)
    await open_lead(page, "Tidal Tiles")
    detail = page.locator(".detail")
    history = detail.locator(".history li")
    await expect(history.first).to_contain_text("Referrer sent the lead")
    expired = history.filter(has_text="archived it as expired")
    await expect(expired.locator("strong")).to_have_text("System")
    # Only a decline can be taken back, not an expiry.
    await expect(detail.get_by_role("button", name=re.compile("^Undo decline"))).to_have_count(0)
    await expect(detail).to_contain_text("Archived leads are read-only")
