"""The partner's Leads page in a real headless Chromium, against a real `leads serve`:
signed in through the printed link, it shows the API's counts, and a partner can
favorite, accept and decline leads with the page alone."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page, expect

from contracts.topics import Topic
from services.lifecycle.entrypoints.demo import sign_in_link
from tests import messages
from tests.e2e.drivers import Upstream

WAIT_MS = 30_000


def customer(company: str) -> dict[str, Any]:
    first = company.split()[0].lower()
    return {
        "company_name": company,
        "contact_name": "Grace Hopper",
        "email": f"grace@{first}.example",
        "phone": "+49 30 1234567",
        "country": "DE",
        "company_size": "50-249",
    }


async def partner_with(upstream: Upstream, *leads: dict[str, Any]) -> str:
    """A partner of its own with these leads (`company` and inbound fields), all received."""
    partner = messages.new_id("partner")
    await upstream.profile(messages.profile(partner))
    ids = []
    for lead in leads:
        fields = {k: v for k, v in lead.items() if k != "company"}
        message = messages.inbound(partner_id=partner, customer=customer(lead["company"]), **fields)
        await upstream.send(Topic.INBOUND, message)
        ids.append(message["lead_id"])
    await upstream.until(
        lambda o: all("lead.received" in o.event_types(i) for i in ids), what="leads received"
    )
    return partner


async def signed_in(page: Page, upstream: Upstream, partner: str) -> None:
    """Through the link `leads dev` prints, for this partner."""
    settings = upstream.settings.model_copy(update={"http_host": "127.0.0.1"})
    await page.goto(sign_in_link(settings, partner))
    await expect(page.get_by_role("heading", name="Leads", exact=True)).to_be_visible()
    assert "token" not in page.url  # the fragment is taken out of the address bar


def row(page: Page, company: str) -> Any:
    return page.locator(".lead", has_text=company)


async def open_lead(page: Page, company: str) -> None:
    await row(page, company).locator(".open").click()
    await expect(page.locator("#detail-title")).to_have_text(company)


async def test_the_printed_link_signs_in_and_the_counts_are_the_apis(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(
        upstream,
        {"company": "Alpine Ski"},
        {"company": "Bavaria Brew"},
        {"company": "Coastal Cargo", "lead_type": "sales_qualified"},
    )
    await signed_in(page, upstream, partner)
    counts = (await upstream.api.get("/v1/leads/counts", partner)).json()
    for tab in ("marketplace", "qualified", "favorites"):
        await expect(page.locator(f"#tab-{tab} .count")).to_have_text(str(counts[tab]["total"]))
    assert counts["marketplace"]["total"] == 2 and counts["qualified"]["total"] == 1
    await expect(page.locator(".lead")).to_have_count(2)
    assert await page.evaluate("sessionStorage.getItem('leads.token') !== null")

    await page.get_by_role("tab", name=re.compile("^Qualified leads")).click()
    await expect(page.locator(".lead")).to_have_count(1)
    await expect(row(page, "Coastal Cargo")).to_contain_text("Sales qualified")


async def test_a_lead_favorited_with_the_heart_is_under_favorites(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Delta Dairy"}, {"company": "Echo Energy"})
    await signed_in(page, upstream, partner)
    heart = page.get_by_role("button", name="Favorite: Delta Dairy")
    await expect(heart).to_have_attribute("aria-pressed", "false")
    await heart.click()
    await expect(page.get_by_role("status").filter(has_text="Added to favorites")).to_be_visible(
        timeout=WAIT_MS
    )
    await expect(page.locator("#tab-favorites .count")).to_have_text("1")

    await page.get_by_role("tab", name=re.compile("^Favorites")).click()
    await expect(page.locator(".lead")).to_have_count(1)
    await expect(row(page, "Delta Dairy")).to_be_visible()
    await expect(heart).to_have_attribute("aria-pressed", "true")
    favorites = (await upstream.api.get("/v1/leads", partner, tab="favorites")).json()["items"]
    assert [lead["customer"]["company_name"] for lead in favorites] == ["Delta Dairy"]


async def test_a_received_lead_accepted_with_the_form_is_under_accepted_with_its_deal(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Fjord Fisheries"})
    await signed_in(page, upstream, partner)
    await open_lead(page, "Fjord Fisheries")
    await page.get_by_role("button", name="Accept", exact=True).click()
    await page.get_by_role("button", name="Accept lead").click()  # empty: the hints answer
    await expect(page.get_by_text("Please correct the marked fields.")).to_be_visible()
    await expect(page.get_by_label("Deal name")).to_be_focused()

    await page.get_by_label("Deal name").fill("Fjord cloud move")
    await page.get_by_label("Estimated value").fill("48000.50")
    await page.get_by_label("Currency").fill("NOK")
    await page.get_by_label("Estimated close date").fill("2027-09-30")
    await page.get_by_label("Notes", exact=False).first.fill("Two sites, one pilot")
    await page.get_by_label("Name", exact=True).fill("Max Mustermann")
    await page.get_by_label("E-mail").fill("max@contoso.example")
    await page.get_by_role("button", name="Accept lead").click()
    await expect(page.get_by_text("Lead accepted")).to_be_visible(timeout=WAIT_MS)

    await page.get_by_text(re.compile("^Accepted")).first.click()  # the stage filter
    await expect(page.locator(".lead")).to_have_count(1)
    await expect(row(page, "Fjord Fisheries")).to_contain_text("Accepted")
    detail = page.locator(".detail")
    await expect(detail.get_by_role("heading", name="Deal", exact=True)).to_be_visible()
    await expect(detail).to_contain_text("Fjord cloud move")
    await expect(detail).to_contain_text("NOK")
    await expect(detail).to_contain_text("max@contoso.example")
    for action in ("Edit", "Add employees", "Won", "Lost"):
        await expect(detail.get_by_role("button", name=action, exact=True)).to_be_visible()
    await expect(detail.get_by_role("button", name="Accept", exact=True)).to_have_count(0)


async def test_a_lead_declined_with_a_reason_has_its_contact_data_gone(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Granite Glass"})
    await signed_in(page, upstream, partner)
    await open_lead(page, "Granite Glass")
    detail = page.locator(".detail")
    await expect(detail).to_contain_text("grace@granite.example")
    await detail.get_by_role("button", name="Decline", exact=True).click()
    await page.get_by_label("Reason").select_option(label="Timeline too short")
    await page.get_by_role("button", name="Decline lead").click()
    await expect(page.get_by_text("Lead declined")).to_be_visible(timeout=WAIT_MS)

    await expect(detail).to_contain_text("contact data was erased")
    await expect(detail).not_to_contain_text("grace@granite.example")
    await expect(detail).not_to_contain_text("Grace Hopper")
    await expect(detail).to_contain_text("Timeline too short")
    await expect(row(page, "Granite Glass")).to_contain_text("Declined")


async def test_an_archived_lead_offers_no_actions(page: Page, upstream: Upstream) -> None:
    partner = await partner_with(upstream, {"company": "Harbor Hotels"})
    lead_id = (await upstream.api.get("/v1/leads", partner)).json()["items"][0]["lead_id"]
    # Won: a decline could still be taken back for a while (test_stale_deals_page.py).
    for action in ("accept", "won"):
        sent = messages.action(lead_id, action, partner_id=partner)
        await upstream.send(Topic.PARTNER_ACTIONS, sent)
    await upstream.until(lambda o: "lead.won" in o.event_types(lead_id))
    await signed_in(page, upstream, partner)
    await page.get_by_text(re.compile("^Archived")).first.click()
    await open_lead(page, "Harbor Hotels")
    detail = page.locator(".detail")
    await expect(detail).to_contain_text("Archived leads are read-only")
    await expect(detail.locator(".action-buttons button")).to_have_count(0)
    await expect(page.get_by_role("button", name="Favorite: Harbor Hotels")).to_be_disabled()


async def test_a_hot_lead_shows_the_flame_and_an_older_request_the_cooler_icon(
    page: Page, upstream: Upstream
) -> None:
    long_ago = (datetime.now(UTC) - timedelta(hours=80)).isoformat()
    partner = await partner_with(
        upstream,
        {"company": "Ignite Labs", "contact_requested": True},
        {"company": "Juniper Mills", "contact_requested": True, "received_at": long_ago},
        {"company": "Kestrel Air"},
    )
    await signed_in(page, upstream, partner)
    hot = "Hot: the customer asked to be contacted"
    cooled = "Contact requested more than 72 hours ago"
    await expect(row(page, "Ignite Labs").get_by_role("img", name=hot)).to_be_visible()
    await expect(row(page, "Juniper Mills").get_by_role("img", name=cooled)).to_be_visible()
    await expect(row(page, "Juniper Mills").get_by_role("img", name=hot)).to_have_count(0)
    await expect(row(page, "Kestrel Air").get_by_role("img")).to_have_count(0)
    await page.get_by_label("Hot leads only").check()
    await expect(page.locator(".lead")).to_have_count(1)
    await expect(row(page, "Ignite Labs")).to_be_visible()


async def test_the_page_works_from_the_keyboard_and_at_375_px(
    page: Page, upstream: Upstream
) -> None:
    partner = await partner_with(upstream, {"company": "Lumen Lighting"})
    await page.set_viewport_size({"width": 375, "height": 800})
    await signed_in(page, upstream, partner)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375

    marketplace = page.get_by_role("tab", name=re.compile("^Marketplace leads"))
    await marketplace.focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name=re.compile("^Qualified leads"))).to_be_focused()
    await expect(page.locator(".empty")).to_have_text("No leads here.")
    await page.keyboard.press("ArrowLeft")
    await expect(marketplace).to_have_attribute("aria-selected", "true")

    await row(page, "Lumen Lighting").locator(".open").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_be_focused()
    await expect(page.locator(".list-column")).to_be_hidden()  # one column on a phone
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await page.get_by_role("button", name="Back to the list").press("Enter")
    await expect(row(page, "Lumen Lighting")).to_be_visible()

    heart = page.get_by_role("button", name="Favorite: Lumen Lighting")
    await heart.focus()
    await page.keyboard.press("Space")
    await expect(page.locator("#tab-favorites .count")).to_have_text("1", timeout=WAIT_MS)


async def test_a_long_unbroken_company_name_wraps_clear_of_the_time_badge_at_375_px(
    page: Page, upstream: Upstream
) -> None:
    company = "Donaudampfschifffahrtsgesellschaftskapitaenswitwenrentenkasse"  # no space
    partner = await partner_with(upstream, {"company": company})
    await page.set_viewport_size({"width": 375, "height": 800})
    await signed_in(page, upstream, partner)
    name = row(page, company).get_by_text(company, exact=True)
    badge = row(page, company).get_by_title(re.compile("^Answer by"))
    await expect(name).to_be_visible()
    await expect(badge).to_have_text(re.compile("left$"))
    name_box, badge_box = await name.bounding_box(), await badge.bounding_box()
    assert name_box is not None and badge_box is not None
    # The badge sits lower than an unwrapped name's one line, so only across can they
    # overlap: the name's box ends where the badge's starts, or before.
    assert name_box["x"] + name_box["width"] <= badge_box["x"], (name_box, badge_box)
    line = await name.evaluate("(name) => parseFloat(getComputedStyle(name).lineHeight)")
    assert name_box["height"] >= 2 * line  # wrapped, not cut off
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375

    await open_lead(page, company)  # and the detail's heading wraps too, nothing cut off
    widths = "(title) => [title.scrollWidth, title.clientWidth]"
    scrolled, shown = await page.locator("#detail-title").evaluate(widths)
    assert scrolled <= shown
