// The partner's Leads page: tabs with counts, filters, pages of leads (newest first,
// or the accepted deals idle longest first), a lead's detail with the actions its
// stage allows.

import * as api from "./api.js";
import { actionForm, appliedText, leadActions, perform, refusalText } from "./forms.js";
import {
  LEAD_TYPES,
  OUTCOMES,
  REASONS_SHOWN,
  TABS,
  ago,
  country,
  day,
  h,
  historyText,
  icon,
  idleDays,
  matchedText,
  money,
  offerText,
  roleName,
  timeLeft,
  undoLeft,
  when,
} from "./ui.js";

const PAGE_SIZE = 20;
const EXPIRING_DAYS = 3;
const STAGES = { "": "All", received: "Received", accepted: "Accepted", archived: "Archived" };
const SORTED = {
  newest: { list: "Leads, newest first", empty: "No leads here." },
  idle: {
    list: "Accepted deals, idle longest first",
    empty: "No accepted deals here: only accepted deals are sorted by idle time.",
  },
};
const STILL_ACTIVE = { action: "log_activity", kind: "note", summary: "Still active" };

const state = {
  tab: "marketplace",
  stage: "",
  hot: false,
  expiring: false,
  sort: "newest",
  cursors: [null],
  next: null,
  counts: null,
  selected: null,
  opener: null, // the row button that opened the detail: focus returns there
  lead: null,
  notice: null,
};

const $ = (id) => document.getElementById(id);

function start() {
  api.takeTokenFromFragment();
  wire();
  if (api.token()) showApp();
  else showSignIn();
}

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    api.signIn(value);
    $("token").value = "";
    showApp();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", () => refresh());
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => chooseTab(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      const to =
        event.key === "Home"
          ? 0
          : event.key === "End"
            ? tabs.length - 1
            : step
              ? (index + step + tabs.length) % tabs.length
              : null;
      if (to === null) return;
      event.preventDefault();
      tabs[to].focus();
      chooseTab(tabs[to].dataset.tab);
    });
  });
  document.querySelectorAll('input[name="stage"]').forEach((radio) =>
    radio.addEventListener("change", () => {
      state.stage = radio.value;
      firstPage();
    }),
  );
  $("hot").addEventListener("change", (event) => {
    state.hot = event.target.checked;
    firstPage();
  });
  $("expiring").addEventListener("change", (event) => {
    state.expiring = event.target.checked;
    firstPage();
  });
  $("sort").addEventListener("change", (event) => {
    state.sort = event.target.value;
    firstPage();
  });
  $("previous").addEventListener("click", () => {
    state.cursors.pop();
    loadPage();
  });
  $("next").addEventListener("click", () => {
    state.cursors.push(state.next);
    loadPage();
  });
  $("back").addEventListener("click", () => closeDetail());
}

function showSignIn(message = "") {
  $("sign-in").hidden = false;
  $("app").hidden = true;
  $("who").hidden = true;
  $("sign-in-message").textContent = message;
  $("sign-in-message").hidden = !message;
  $("token").focus();
}

function signOut(message) {
  api.signOut();
  state.selected = state.lead = null;
  showSignIn(message);
}

const expired = () => signOut("Your sign-in has expired or is not valid: sign in again.");

async function guarded(work) {
  try {
    return await work();
  } catch (error) {
    if (error.status === 401) expired();
    else showProblem(error);
    return undefined;
  }
}

function showProblem(error) {
  const banner = $("problem");
  banner.textContent =
    error.status === 503
      ? "The lead service is not answering right now. Try again in a few seconds."
      : `Something went wrong: ${error.message}`;
  banner.hidden = false;
}

async function showApp() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  const who = api.claims() || {};
  $("partner-name").textContent = who.partner_id || "";
  $("role").textContent = roleName(who.role || "");
  $("who").hidden = false;
  guarded(async () => {
    const profile = await api.get("/v1/profile").catch((error) => {
      if (error.status === 404) return null;
      throw error;
    });
    if (profile) $("partner-name").textContent = profile.name;
  });
  await refresh();
}

async function refresh() {
  $("problem").hidden = true;
  await Promise.all([loadCounts(), loadPage()]);
  if (state.selected) await loadDetail(state.selected);
}

function chooseTab(tab) {
  if (tab === state.tab) return;
  state.tab = tab;
  renderTabs();
  firstPage();
}

function firstPage() {
  state.cursors = [null];
  loadPage();
}

async function loadCounts() {
  const counts = await guarded(() => api.get("/v1/leads/counts"));
  if (!counts) return;
  state.counts = counts;
  renderTabs();
}

function renderTabs() {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.tab === state.tab;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    const count = state.counts ? state.counts[tab.dataset.tab].total : "";
    tab.querySelector(".count").textContent = count;
    tab.setAttribute("aria-label", `${TABS[tab.dataset.tab]}, ${count} leads`);
  }
  $("list-panel").setAttribute("aria-labelledby", `tab-${state.tab}`);
  const byStage = state.counts ? state.counts[state.tab] : null;
  for (const radio of document.querySelectorAll('input[name="stage"]')) {
    const n = byStage ? (radio.value ? byStage[radio.value] : byStage.total) : "";
    radio.nextElementSibling.querySelector(".count").textContent = n;
  }
}

async function loadPage() {
  const params = {
    tab: state.tab,
    stage: state.stage || null,
    hot: state.hot || null,
    expiring_within_days: state.expiring ? EXPIRING_DAYS : null,
    sort: state.sort,
    limit: PAGE_SIZE,
    cursor: state.cursors[state.cursors.length - 1],
  };
  $("rows").setAttribute("aria-busy", "true");
  const page = await guarded(() => api.get("/v1/leads", params));
  $("rows").setAttribute("aria-busy", "false");
  if (!page) return;
  $("rows").setAttribute("aria-label", SORTED[state.sort].list);
  state.next = page.next_cursor;
  renderRows(page.items);
  $("previous").disabled = state.cursors.length === 1;
  $("next").disabled = !state.next;
  $("page-number").textContent = `Page ${state.cursors.length}`;
}

function renderRows(leads) {
  const rows = $("rows");
  rows.replaceChildren();
  if (leads.length === 0) {
    rows.append(h("li", { class: "empty" }, SORTED[state.sort].empty));
    return;
  }
  for (const lead of leads) rows.append(row(lead));
}

function stateBadge(lead) {
  if (lead.stage === "received") {
    const left = timeLeft(lead.respond_by);
    return h(
      "span",
      { class: `left ${left.urgency}`, title: `Answer by ${when(lead.respond_by)}` },
      left.text,
    );
  }
  if (lead.stage === "accepted") return h("span", { class: "left accepted" }, "Accepted");
  return h(
    "span",
    { class: `left archived ${lead.outcome}` },
    OUTCOMES[lead.outcome] || "Archived",
  );
}

function contactRequest(lead, withText = false) {
  if (lead.stage === "archived") return null; // no one to reach out to any more
  if (lead.hot) {
    const label = "Hot: the customer asked to be contacted";
    return withText ? h("span", { class: "flag hot" }, icon("flame"), "Hot") : icon("flame", label);
  }
  if (lead.contact_requested) {
    const label = "Contact requested more than 72 hours ago";
    return withText
      ? h("span", { class: "flag cooled" }, icon("cooled"), "Contact requested")
      : icon("cooled", label);
  }
  return null;
}

function row(lead) {
  const company = lead.customer.company_name;
  const open = h(
    "button",
    {
      type: "button",
      class: "open",
      "aria-current": lead.lead_id === state.selected ? "true" : null,
      onclick: () => select(lead.lead_id, open),
    },
    h("span", { class: "company" }, h("span", { class: "name" }, company), contactRequest(lead)),
    h(
      "span",
      { class: "meta" },
      h("span", { class: "country" }, country(lead.customer.country)),
      h("span", { class: "type" }, LEAD_TYPES[lead.lead_type]),
      h(
        "span",
        { class: "received", title: when(lead.received_at) },
        `Received ${ago(lead.received_at)}`,
      ),
      lead.deal ? h("span", { class: "deal" }, money(lead.deal.value)) : null,
      idleChip(lead),
      offerChip(lead),
      lead.possible_duplicate_of && lead.stage !== "archived" // settled once archived
        ? h("span", { class: "chip duplicate" }, "Possible duplicate")
        : null,
    ),
  );
  return h(
    "li",
    { class: "lead", "data-lead": lead.lead_id },
    heart(lead, company),
    open,
    stateBadge(lead),
  );
}

function idleChip(lead) {
  const days = idleDays(lead);
  if (days === null) return null;
  return h(
    "span",
    {
      class: `chip idle ${lead.idle_step || ""}`,
      title: `The deal has not moved since ${when(lead.idle_since)}`,
    },
    `Idle ${days} d`,
  );
}

function offerChip(lead) {
  const text = offerText(lead.offer);
  if (!text) return null;
  // Never who had it before: the API does not say, and the partner must not learn it.
  return h(
    "span",
    { class: "chip offer", title: "Offered to other partners before you, who passed on it" },
    text,
  );
}

function heart(lead, company) {
  const archived = lead.stage === "archived";
  const button = h(
    "button",
    {
      type: "button",
      class: "heart",
      "aria-pressed": String(lead.favorite),
      "aria-label": `Favorite: ${company}`,
      title: archived
        ? "Archived leads are read-only"
        : lead.favorite
          ? "Remove from favorites"
          : "Add to favorites",
      disabled: archived,
    },
    icon("heart"),
  );
  button.addEventListener("click", () => toggleFavorite(lead, button));
  return button;
}

async function toggleFavorite(lead, button) {
  const favorite = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(favorite));
  button.classList.add("pending");
  const body = { action: favorite ? "favorite" : "unfavorite" };
  const result = await guarded(() => perform(lead, body, api.newKey(), false));
  button.classList.remove("pending");
  if (!result || result.status !== "applied") {
    button.setAttribute("aria-pressed", String(!favorite));
    if (result && result.status === "rejected") toast(refusalText(result));
    return;
  }
  toast(appliedText(result));
  await Promise.all([loadCounts(), state.tab === "favorites" ? loadPage() : null]);
  if (state.selected === lead.lead_id) await loadDetail(lead.lead_id);
}

let toastTimer = null;
function toast(text) {
  $("toast").textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($("toast").textContent = ""), 5000);
}

async function select(leadId, opener) {
  state.selected = leadId;
  state.opener = opener;
  state.notice = null;
  for (const button of document.querySelectorAll(".lead .open"))
    button.removeAttribute("aria-current");
  if (opener) opener.setAttribute("aria-current", "true");
  document.body.classList.add("showing-detail");
  await loadDetail(leadId);
  if (narrow.matches) window.scrollTo(0, 0); // the lead takes the list's place
  $("detail-title").focus({ preventScroll: true });
}

const narrow = window.matchMedia("(max-width: 900px)");

function closeDetail() {
  document.body.classList.remove("showing-detail");
  state.selected = state.lead = null;
  $("detail-body").replaceChildren(
    h("p", { class: "placeholder" }, "Choose a lead to see its details."),
  );
  $("detail-title").textContent = "Lead details";
  if (state.opener && state.opener.isConnected) state.opener.focus();
}

async function loadDetail(leadId) {
  const lead = await guarded(() => api.get(leadPath(leadId)));
  if (!lead || state.selected !== leadId) return;
  const otherId = duplicateOf(lead);
  // The other lead only names the banner's link: without it, the link shows its id.
  const other = otherId ? await api.get(leadPath(otherId)).catch(() => null) : null;
  if (state.selected !== leadId) return;
  state.lead = lead;
  renderDetail(lead, other);
}

const leadPath = (leadId) => `/v1/leads/${encodeURIComponent(leadId)}`;

/** Opens another lead of this partner from the detail; its row (if listed) is the opener. */
function openLead(leadId) {
  const listed = document.querySelector(`.lead[data-lead="${CSS.escape(leadId)}"] .open`);
  select(leadId, listed || state.opener);
}

function section(title, ...content) {
  return h("section", { class: "card" }, h("h3", {}, title), ...content);
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

// A lead's detail, top to bottom; each builder returns its part, or null when the
// lead has nothing to show there.
function renderDetail(lead, other = null) {
  $("detail-title").textContent = lead.customer.company_name;
  const parts = [
    notice(),
    chips(lead),
    contactAlert(lead),
    duplicateBanner(lead, other),
    answerBy(lead),
    needSection(lead),
    customerSection(lead),
    referralSection(lead),
    dealSection(lead),
    employeesSection(lead),
    actions(lead),
    historySection(lead),
  ];
  $("detail-body").replaceChildren(...parts.filter((part) => part !== null));
}

function notice() {
  if (!state.notice) return null;
  return h("p", { class: `notice ${state.notice.kind}`, role: "status" }, state.notice.text);
}

function chips(lead) {
  return h(
    "p",
    { class: "chips" },
    h("span", { class: "chip" }, LEAD_TYPES[lead.lead_type]),
    h(
      "span",
      { class: `chip stage-${lead.stage}` },
      lead.outcome
        ? `Archived: ${OUTCOMES[lead.outcome]}`
        : lead.stage === "accepted"
          ? "Accepted"
          : "Received",
    ),
    contactRequest(lead, true),
    idleChip(lead),
    offerChip(lead),
    lead.favorite ? h("span", { class: "chip favorite" }, "Favorite") : null,
  );
}

function contactAlert(lead) {
  if (lead.hot && lead.stage !== "archived") {
    return h(
      "p",
      { class: "alert hot" },
      icon("flame"),
      `The customer asked to be contacted directly: reach out as soon as you can (hot until ${when(lead.hot_until)}).`,
    );
  }
  if (lead.contact_requested && lead.stage !== "archived") {
    return h(
      "p",
      { class: "alert cooled" },
      icon("cooled"),
      "The customer asked to be contacted more than 72 hours ago. The lead is still active: you can still reach out.",
    );
  }
  return null;
}

/** The partner's other lead this one repeats: as declined, or as flagged. */
function duplicateOf(lead) {
  return lead.duplicate_of || lead.possible_duplicate_of?.lead_id || null;
}

function duplicateBanner(lead, other) {
  const otherId = duplicateOf(lead);
  if (!otherId) return null;
  const label = other
    ? `${other.customer.company_name} (received ${when(other.received_at)})`
    : otherId;
  const link = h(
    "a",
    {
      href: `#lead-${otherId}`,
      onclick: (event) => {
        event.preventDefault();
        openLead(otherId);
      },
    },
    label,
  );
  const flag = lead.possible_duplicate_of;
  const matched =
    flag && flag.lead_id === otherId ? ` — matched on ${matchedText(flag.matched_on)}` : "";
  const words = lead.duplicate_of
    ? ["Declined as a duplicate of your lead ", link, `${matched}.`]
    : [
        "Possible duplicate of your lead ",
        link,
        `${matched}.`,
        lead.stage === "received" ? " If it is the same request, decline it as a duplicate." : "",
      ];
  return h("p", { class: "alert duplicate" }, h("span", {}, words));
}

function answerBy(lead) {
  if (lead.stage !== "received") return null;
  const left = timeLeft(lead.respond_by);
  return h(
    "p",
    { class: `respond ${left.urgency}` },
    `Answer by ${when(lead.respond_by)}: ${left.text.toLowerCase()}.`,
  );
}

function needSection(lead) {
  return section("What the customer needs", h("p", { class: "need" }, lead.need));
}

function customerSection(lead) {
  const customer = lead.customer;
  const erased =
    customer.email === null && (lead.outcome === "declined" || lead.outcome === "expired");
  return section(
    "Customer",
    facts([
      ["Company", customer.company_name],
      ["Country", country(customer.country)],
      ["Company size", customer.company_size],
      ["Industry", customer.industry],
      ["Contact", customer.contact_name],
      [
        "E-mail",
        customer.email ? h("a", { href: `mailto:${customer.email}` }, customer.email) : null,
      ],
      ["Phone", customer.phone],
    ]),
    erased
      ? h(
          "p",
          { class: "erased" },
          `The customer's contact data was erased when the lead was ${lead.outcome}.`,
        )
      : null,
  );
}

function referralSection(lead) {
  return section(
    "Referral",
    facts([
      ["Received", when(lead.received_at)],
      [
        "Sent by",
        lead.referrer.name ||
          `${lead.referrer.kind === "microsoft" ? "Microsoft" : "Partner"} (${lead.referrer.id})`,
      ],
      ["Campaign", lead.campaign_id],
      ["Answered", lead.answered_at ? when(lead.answered_at) : null],
      ["Reason", lead.decline_reason ? REASONS_SHOWN[lead.decline_reason] : null],
      ["Closing notes", lead.closing_notes],
    ]),
  );
}

function dealSection(lead) {
  const deal = lead.deal;
  if (!deal) return null;
  return section(
    "Deal",
    facts([
      ["Name", deal.name],
      ["Value", money(deal.value)],
      ["Estimated close", day(deal.estimated_close_date)],
      ["Notes", deal.notes],
      ["CRM ID", deal.crm_id],
      ["Campaign", deal.campaign_id],
    ]),
  );
}

function employeesSection(lead) {
  if (!lead.contacts.length) return null;
  return section(
    "Your employees on this deal",
    h(
      "ul",
      { class: "people" },
      lead.contacts.map((c) =>
        h(
          "li",
          {},
          h("strong", {}, c.name),
          " ",
          h("a", { href: `mailto:${c.email}` }, c.email),
          c.phone ? ` · ${c.phone}` : "",
        ),
      ),
    ),
  );
}

function historySection(lead) {
  return section(
    "History",
    h(
      "ol",
      { class: "history" },
      lead.history.map((entry) => {
        const { who, what } = historyText(entry);
        const move =
          entry.from_stage && entry.from_stage !== entry.to_stage
            ? ` (${entry.from_stage} → ${entry.to_stage})`
            : "";
        return h(
          "li",
          {},
          h("time", { datetime: entry.at }, when(entry.at)),
          h("span", {}, h("strong", {}, who), ` ${what}${move}`),
        );
      }),
    ),
  );
}

function actions(lead) {
  const allowed = leadActions(lead);
  const quick = quickActions(lead);
  if (allowed.length === 0 && quick.length === 0) {
    return section(
      "Actions",
      h("p", { class: "read-only" }, "Archived leads are read-only: there is nothing left to do."),
    );
  }
  const holder = h("div", { class: "form-holder" });
  const buttons = allowed.map(([kind, label]) => {
    const main = kind === "accept" || kind === "won";
    const button = h(
      "button",
      {
        type: "button",
        class: main ? "primary" : "secondary",
        "aria-expanded": "false",
        "data-opens": kind,
      },
      label,
    );
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") === "true";
      for (const other of buttons) other.setAttribute("aria-expanded", "false");
      holder.replaceChildren();
      if (open) return;
      button.setAttribute("aria-expanded", "true");
      const { form, heading } = actionForm(kind, lead, {
        done: (status) => decided(lead, status),
        signedOut: expired,
      });
      holder.append(form);
      heading.focus();
    });
    return button;
  });
  return section(
    "Actions",
    h("div", { class: "action-buttons" }, buttons, quick),
    undoHint(lead),
    holder,
  );
}

/** The actions taken with one click, no form: the lead's version goes with them. */
function quickActions(lead) {
  const found = [];
  if (lead.stage === "accepted") {
    found.push(quickButton(lead, "Still active", STILL_ACTIVE));
  }
  const left = undoTimeLeft(lead);
  if (left) {
    found.push(quickButton(lead, `Undo decline (${left})`, { action: "undo_decline" }));
  }
  return found;
}

/** "6 d left" to take this partner's decline back; null when it cannot (any more). */
const undoTimeLeft = (lead) => (lead.undo_until ? undoLeft(lead.undo_until) : null);

function undoHint(lead) {
  if (!undoTimeLeft(lead)) return null;
  return h(
    "p",
    { class: "hint" },
    `You may take your decline back until ${when(lead.undo_until)}: the lead comes back to Received.`,
  );
}

function quickButton(lead, label, body) {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    const status = await guarded(() => perform(lead, body, api.newKey()));
    button.disabled = false;
    if (status) await showDecided(lead, status);
  });
  return button;
}

/** A form's action, once decided: the form itself says that it still waits, or
 * why the service refused (but for a stale version, which reloads the lead). */
async function decided(lead, status) {
  if (status.status === "pending") return;
  if (status.status === "rejected" && status.reason !== "stale_version") return;
  await showDecided(lead, status);
}

function noticeOf(status) {
  if (status.status === "applied") return { kind: "ok", text: appliedText(status) };
  if (status.status === "rejected") return { kind: "error", text: refusalText(status) };
  return { kind: "busy", text: "Still waiting for the lead service. Refresh in a moment." };
}

/** What became of an action, above the lead reloaded (and the list and counts). */
async function showDecided(lead, status) {
  state.notice = noticeOf(status);
  await Promise.all([loadCounts(), loadPage()]);
  await loadDetail(lead.lead_id);
  $("detail-title").focus({ preventScroll: true });
}

start();
