// Small helpers: building elements (text only, never HTML from data), icons, and
// the words and formats a partner reads.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const PATHS = {
  heart:
    "M12 20.3c-.3 0-.6-.1-.8-.3C6.4 15.9 3 12.8 3 9.1 3 6.3 5.2 4.2 7.9 4.2c1.6 0 3.1.7 4.1 1.9 1-1.2 2.5-1.9 4.1-1.9 2.7 0 4.9 2.1 4.9 4.9 0 3.7-3.4 6.8-8.2 10.9-.2.2-.5.3-.8.3z",
  flame:
    "M12.6 2.4c.4 3 3.1 4.6 4.6 7.2 1.6 2.8 1.2 6.4-1.2 8.6-2.5 2.3-6.5 2.4-9 .2-2.4-2.1-2.8-5.7-1-8.4.3 1.7 1.2 2.9 2.6 3.5-.7-3.9 1-8.4 4-11.1z",
  cooled:
    "M12 3.2a8.8 8.8 0 1 0 0 17.6 8.8 8.8 0 0 0 0-17.6zm0 1.8a7 7 0 1 1 0 14 7 7 0 0 1 0-14zm-.9 2.6v5.1l4.1 2.5.9-1.5-3.2-1.9V7.6z",
  back: "M15.4 5.4 14 4l-8 8 8 8 1.4-1.4L8.8 12z",
  refresh: "M17.6 6.4A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4z",
};

export function icon(name, label = null) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  if (!label) {
    svg.setAttribute("aria-hidden", "true");
    return svg;
  }
  return h(
    "span",
    { class: `badge-icon ${name}`, role: "img", "aria-label": label, title: label },
    svg,
  );
}

export const LEAD_TYPES = {
  customer_inquiry: "Customer inquiry",
  marketing_qualified: "Marketing qualified",
  sales_qualified: "Sales qualified",
};

export const TABS = {
  marketplace: "Marketplace leads",
  qualified: "Qualified leads",
  favorites: "Favorites",
};

export const REASONS = {
  budget_not_adequate: "Budget not adequate",
  customer_unresponsive: "Customer unresponsive",
  chose_another_vendor: "Customer chose another vendor",
  requirement_not_met: "We can't meet the requirement",
  not_a_customer: "Not a real customer",
  timeline_too_short: "Timeline too short",
  spam_or_abuse: "Spam or abuse",
  duplicate: "Duplicate lead",
  other: "Other",
};

/** Every reason a lead shows: the partner's own, and the service's (never offered). */
export const REASONS_SHOWN = { ...REASONS, no_update: "No update: closed by the service" };

/** Why the service refused an action, in words; the API's detail follows it. */
export const REFUSALS = {
  stale_version:
    "This lead changed while you were looking at it. It has been reloaded: check it and try again.",
  lead_archived: "This lead is archived, so it is read-only.",
  invalid_transition: "This action is not possible at the lead's current stage.",
  unknown_lead: "This lead does not exist for your company.",
  forbidden: "Your role may not act on leads.",
  malformed: "The service could not read this action.",
  internal_error: "The service could not complete this action; its operators have it.",
  undo_window_passed: "It is too late to take this decline back.",
  lead_reoffered: "The lead went to another partner, so the decline cannot be taken back.",
};

/** "Offer 2 of 3" on a lead re-offered after other partners passed on it; null on a
 * first offer (or a lead sent without routing), which says nothing worth a badge. */
export function offerText(offer) {
  if (!offer || offer.number <= 1) return null;
  return `Offer ${offer.number} of ${offer.of}`;
}

const MATCHES = { email: "e-mail", phone: "phone", company_domain: "company domain" };

/** What a possible duplicate matched on, in words: "e-mail, phone". */
export function matchedText(matchedOn) {
  return matchedOn.map((key) => MATCHES[key] || key).join(", ");
}

export const OUTCOMES = { won: "Won", lost: "Lost", declined: "Declined", expired: "Expired" };

const ROLES = { referrals_admin: "Referrals admin", mpn_partner_admin: "MPN partner admin" };

export function roleName(role) {
  return ROLES[role] || role;
}

const HISTORY = {
  receive: "sent the lead",
  accept: "accepted the lead",
  decline: "declined the lead",
  update: "edited the deal",
  add_contacts: "added employees",
  won: "marked the deal won",
  lost: "marked the deal lost",
  favorite: "added it to favorites",
  unfavorite: "removed it from favorites",
  expire: "archived it as expired (no answer in time)",
  age_contact_request: "noted that the contact request is over 72 hours old",
  reoffer: "passed the lead on to another partner",
  unroutable: "found no other partner to pass the lead on to",
  undo_decline: "took the decline back: the lead is open again",
  reopen: "reopened the lead",
  log_activity: "logged work on the deal",
  snooze: "snoozed the deal's idle alerts",
  deal_nudge: "reminded you that the deal has not moved",
  deal_escalate: "told your admins that the deal has not moved",
  close_date_passed: "noted that the deal's expected close date has passed",
  auto_close: "closed the deal as lost: it had not moved for too long",
};

// A re-offered lead starts with the referrer's `reoffer`: to this partner, a new offer
// (never whose it was before).
const REOFFERED = "offered the lead to you after another partner passed on it";

/** Who made a change: a partner's user by id (and role); the referrer and the
 * service by what they are, never by a user's name. */
function actorText(actor) {
  if (actor.kind === "partner_user") {
    const id = actor.id || "A user";
    return actor.role ? `${id} (${roleName(actor.role)})` : id;
  }
  return actor.kind === "referrer" ? "Referrer" : "System";
}

export function historyText(entry) {
  const who = actorText(entry.actor);
  if (entry.action === "reoffer" && entry.actor.kind === "referrer") {
    return { who, what: REOFFERED };
  }
  return { who, what: HISTORY[entry.action] || entry.action };
}

let regions = null;
export function country(code) {
  try {
    regions = regions || new Intl.DisplayNames(["en"], { type: "region" });
    return regions.of(code) || code;
  } catch {
    return code;
  }
}

export function money(value) {
  if (!value) return "";
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: value.currency }).format(
      Number(value.amount),
    );
  } catch {
    return `${value.amount} ${value.currency}`;
  }
}

const dateTime = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeZone: "UTC" });

export function when(iso) {
  return dateTime.format(new Date(iso));
}

export function day(isoDate) {
  return dateOnly.format(new Date(`${isoDate}T00:00:00Z`));
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

export function ago(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** The service nudges a partner about a deal that has not moved for this long
 * (LEADS_DEAL_NUDGE_AFTER, by default). */
export const IDLE_NUDGE_DAYS = 14;

/** Whole days an accepted deal has not moved, once that is worth showing: from
 * IDLE_NUDGE_DAYS on, or once the service nudged about it (its own window may be
 * shorter); null otherwise, and while the deal is snoozed. */
export function idleDays(lead, now = Date.now()) {
  if (lead.stage !== "accepted" || !lead.idle_since) return null;
  if (lead.snoozed_until && new Date(lead.snoozed_until).getTime() > now) return null;
  const days = Math.max(0, Math.floor((now - new Date(lead.idle_since).getTime()) / DAY_MS));
  return lead.idle_step || days >= IDLE_NUDGE_DAYS ? days : null;
}

/** What is left of the time to take a decline back: "6 d left" (days rounded up),
 * "5 h left" under a day; null once it has passed. */
export function undoLeft(undoUntil, now = Date.now()) {
  const left = new Date(undoUntil).getTime() - now;
  if (!(left > 0)) return null;
  return left >= DAY_MS
    ? `${Math.ceil(left / DAY_MS)} d left`
    : `${Math.ceil(left / HOUR_MS)} h left`;
}

/** Time left to answer a received lead: text and urgency (`ok`, `soon`, `urgent`, `over`). */
export function timeLeft(respondBy, now = Date.now()) {
  const seconds = (new Date(respondBy).getTime() - now) / 1000;
  if (seconds <= 0) return { text: "Time is up", urgency: "over" };
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.max(1, Math.floor((seconds % 3600) / 60));
  let text = `${minutes} min left`;
  if (days >= 2) text = `${days} days left`;
  else if (days === 1) text = `1 day ${hours} h left`;
  else if (hours >= 1) text = `${hours} h ${minutes} min left`;
  const urgency = seconds < 86400 ? "urgent" : seconds < 3 * 86400 ? "soon" : "ok";
  return { text, urgency };
}
