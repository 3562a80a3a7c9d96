"""Issue 25 on the Leads page, in a real headless Chromium against a real `leads serve`:
a lead re-offered after another partner declined it shows which offer it is (and not
who had it), and a possible duplicate links to the partner's other lead and can be
declined as a duplicate of it."""

import re
from typing import Any

from playwright.async_api import Page, expect

from contracts.topics import Topic
from tests import messages
from tests.e2e.browser.test_leads_page import WAIT_MS, customer, open_lead, row, signed_in
from tests.e2e.drivers import Outputs, Upstream


async def received(upstream: Upstream, lead: dict[str, Any]) -> None:
    lead_id = lead["lead_id"]
    await upstream.until(lambda o: "lead.received" in o.event_types(lead_id), what="lead received")


def received_by(partner: str) -> Any:
    """A condition on the outputs: some lead was received by `partner` (a re-offered
    lead's id is the service's to choose)."""

    def holds(outputs: Outputs) -> bool:
        return any(
            event["type"] == "lead.received" and event["partner_id"] == partner
            for event in outputs.values(Topic.EVENTS)
        )

    return holds


async def test_a_lead_another_partner_declined_is_offer_2_of_3_and_does_not_say_whose(
    page: Page, upstream: Upstream
) -> None:
    first, second, third = (messages.new_id("partner") for _ in range(3))
    for partner in (first, second, third):
        await upstream.profile(messages.profile(partner))  # each serves DE, 50-249
    lead = messages.inbound(
        partner_id=first,
        customer=customer("Nordic Nets"),
        consent={"contact": True, "share_with_other_partners": True},
        routing={"candidates": [first, second, third], "max_offers": 3},
    )
    await upstream.send(Topic.INBOUND, lead)
    await received(upstream, lead)
    await upstream.send(
        Topic.PARTNER_ACTIONS, messages.action(lead["lead_id"], "decline", partner_id=first)
    )
    await upstream.until(received_by(second), what="the lead re-offered to the second partner")

    await page.set_viewport_size({"width": 375, "height": 800})
    await signed_in(page, upstream, second)
    await expect(row(page, "Nordic Nets").get_by_text("Offer 2 of 3", exact=True)).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await open_lead(page, "Nordic Nets")
    detail = page.locator(".detail")
    await expect(detail.get_by_text("Offer 2 of 3", exact=True)).to_be_visible()
    await expect(detail.locator(".history")).to_contain_text(
        "offered the lead to you after another partner passed on it"
    )
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    # The partner before (its id is in its profile's name too) is nowhere on the page.
    await expect(page.locator("body")).not_to_contain_text(first)

    # The first partner's lead is offer 1 of 3: nothing worth a badge.
    mine = (await upstream.api.get(f"/v1/leads/{lead['lead_id']}", first)).json()
    assert mine["offer"] == {"number": 1, "of": 3}, mine["offer"]
    theirs = await page.context.new_page()  # a tab of its own: its own sign-in
    await signed_in(theirs, upstream, first)
    await expect(row(theirs, "Nordic Nets")).to_contain_text("Declined")
    await expect(row(theirs, "Nordic Nets").get_by_text(re.compile("^Offer"))).to_have_count(0)


async def test_a_possible_duplicate_links_to_the_first_lead_and_is_declined_as_a_duplicate(
    page: Page, upstream: Upstream
) -> None:
    partner = messages.new_id("partner")
    await upstream.profile(messages.profile(partner))
    first = messages.inbound(
        partner_id=partner, customer={**customer("Alpine Lodge"), "email": "Grace@Alpine.example"}
    )
    second = messages.inbound(
        partner_id=partner, customer={**customer("Alpine Ski"), "phone": "+49 89 7654321"}
    )
    for lead in (first, second):  # one after the other: the second finds the first open
        await upstream.send(Topic.INBOUND, lead)
        await received(upstream, lead)
    await upstream.api.until(
        f"/v1/leads/{second['lead_id']}",
        lambda r: r.status_code == 200 and r.json().get("possible_duplicate_of") is not None,
        partner=partner,
    )

    await signed_in(page, upstream, partner)
    await expect(row(page, "Alpine Ski")).to_contain_text("Possible duplicate")
    await expect(row(page, "Alpine Lodge")).not_to_contain_text("Possible duplicate")
    await open_lead(page, "Alpine Ski")
    detail = page.locator(".detail")
    banner = detail.locator("p", has_text="Possible duplicate of")
    await expect(banner).to_contain_text("matched on e-mail")
    await expect(banner).not_to_contain_text("phone")  # the phones differ

    await banner.get_by_role("link", name=re.compile("^Alpine Lodge")).press("Enter")
    await expect(page.locator("#detail-title")).to_have_text("Alpine Lodge")
    await expect(page.locator("#detail-title")).to_be_focused()
    await expect(row(page, "Alpine Lodge").locator(".open")).to_have_attribute(
        "aria-current", "true"
    )
    await expect(detail).not_to_contain_text("Possible duplicate")  # the first is no duplicate
    await expect(detail.get_by_role("button", name="Decline as duplicate")).to_have_count(0)

    await open_lead(page, "Alpine Ski")
    await detail.get_by_role("button", name="Decline as duplicate").click()
    await detail.get_by_role("button", name="Decline lead").click()
    await expect(page.get_by_text("Lead declined")).to_be_visible(timeout=WAIT_MS)
    await expect(row(page, "Alpine Ski")).to_contain_text("Declined")
    await expect(detail).to_contain_text("Duplicate lead")  # the reason, as recorded
    declined_as = detail.locator("p", has_text="Declined as a duplicate of your lead")
    await expect(declined_as.get_by_role("link", name=re.compile("^Alpine Lodge"))).to_be_visible()
    await expect(detail.get_by_role("button", name="Decline as duplicate")).to_have_count(0)
    await expect(row(page, "Alpine Lodge")).to_contain_text("left")  # still to answer

    second_id = second["lead_id"]
    outputs = await upstream.until(lambda o: "lead.declined" in o.event_types(second_id))
    declined = [e["lead"] for e in outputs.events(second_id) if e["type"] == "lead.declined"]
    reason, of = declined[0]["decline_reason"], declined[0]["duplicate_of"]
    assert (reason, of) == ("duplicate", first["lead_id"]), (reason, of)
