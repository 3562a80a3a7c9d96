// The forms of the actions a lead's stage allows, with the contract's limits as
// hints, and the way an action goes: sent, taken (202), then applied or refused.

import * as api from "./api.js";
import { h, REASONS, REFUSALS } from "./ui.js";

// HTML `pattern`s (compiled with the `v` flag: punctuation in classes escaped).
const ID_PATTERN = "[A-Za-z0-9._:\\-]{1,64}";
const AMOUNT_PATTERN = "[0-9]{1,13}(\\.[0-9]{1,4})?";
const CURRENCY_PATTERN = "[A-Z]{3}";
const PHONE_PATTERN = "\\+?[0-9 \\(\\)\\.\\/\\-]{3,32}";
const CURRENCIES = [
  "EUR",
  "USD",
  "GBP",
  "CHF",
  "JPY",
  "AUD",
  "CAD",
  "SEK",
  "NOK",
  "DKK",
  "PLN",
  "INR",
];
const MAX_CONTACTS = 50;

let counter = 0;

/** A labelled control with its hint and its error line, found later by `data-path`. */
function field(spec) {
  const id = `field-${++counter}`;
  const hint = spec.hint ? h("p", { class: "hint", id: `${id}-hint` }, spec.hint) : null;
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const common = {
    id,
    name: spec.path,
    "data-path": spec.path,
    required: spec.required,
    "aria-describedby": [hint && `${id}-hint`, `${id}-error`].filter(Boolean).join(" "),
  };
  let control;
  if (spec.options) {
    control = h(
      "select",
      common,
      h("option", { value: "" }, spec.placeholder || "Choose…"),
      Object.entries(spec.options).map(([value, text]) => h("option", { value }, text)),
    );
  } else if (spec.multiline) {
    control = h("textarea", { ...common, rows: 3, maxlength: spec.maxlength });
  } else {
    control = h("input", {
      ...common,
      type: spec.type || "text",
      maxlength: spec.maxlength,
      pattern: spec.pattern,
      inputmode: spec.inputmode,
      min: spec.min,
      list: spec.list,
      autocomplete: spec.autocomplete || "off",
      placeholder: spec.placeholder,
    });
  }
  control.value = spec.value ?? "";
  const label = h(
    "label",
    { for: id },
    spec.label,
    spec.required ? h("span", { class: "required" }, " (required)") : null,
  );
  return {
    element: h("div", { class: `field ${spec.class || ""}` }, label, control, hint, error),
    control,
  };
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

function optional(value) {
  const text = value.trim();
  return text === "" ? undefined : text;
}

function dealFields(prefix, deal = null, campaign = null) {
  const value = deal ? deal.value : null;
  const fields = {
    name: field({
      path: `${prefix}.name`,
      label: "Deal name",
      required: !deal,
      maxlength: 200,
      value: deal?.name,
      hint: "Up to 200 characters.",
    }),
    amount: field({
      path: `${prefix}.value.amount`,
      label: "Estimated value",
      required: !deal,
      pattern: AMOUNT_PATTERN,
      inputmode: "decimal",
      value: value?.amount,
      placeholder: "120000.00",
      hint: "A number, up to 4 decimals.",
    }),
    currency: field({
      path: `${prefix}.value.currency`,
      label: "Currency",
      required: !deal,
      pattern: CURRENCY_PATTERN,
      maxlength: 3,
      list: "currencies",
      value: value?.currency || "EUR",
      hint: "ISO 4217, e.g. EUR.",
    }),
    close: field({
      path: `${prefix}.estimated_close_date`,
      label: "Estimated close date",
      type: "date",
      required: !deal,
      min: deal ? undefined : today(),
      value: deal?.estimated_close_date,
    }),
    notes: field({
      path: `${prefix}.notes`,
      label: "Notes",
      multiline: true,
      maxlength: 4000,
      value: deal?.notes,
      hint: "What the customer is looking for. Up to 4000 characters.",
    }),
    crm: field({
      path: `${prefix}.crm_id`,
      label: "CRM ID",
      pattern: ID_PATTERN,
      maxlength: 64,
      value: deal?.crm_id,
      hint: "Your own reference: letters, digits and . _ : -",
    }),
    campaign: field({
      path: `${prefix}.campaign_id`,
      label: "Campaign ID",
      pattern: ID_PATTERN,
      maxlength: 64,
      value: deal ? deal.campaign_id : campaign,
      hint: "The marketing campaign behind the lead, if any.",
    }),
  };
  const element = [
    fields.name.element,
    h("div", { class: "field-row" }, fields.amount.element, fields.currency.element),
    fields.close.element,
    fields.notes.element,
    h("div", { class: "field-row" }, fields.crm.element, fields.campaign.element),
    h(
      "datalist",
      { id: "currencies" },
      CURRENCIES.map((code) => h("option", { value: code })),
    ),
  ];
  const read = () => ({
    name: fields.name.control.value.trim(),
    value: {
      amount: fields.amount.control.value.trim(),
      currency: fields.currency.control.value.trim().toUpperCase(),
    },
    estimated_close_date: fields.close.control.value,
    notes: optional(fields.notes.control.value),
    crm_id: optional(fields.crm.control.value),
    campaign_id: optional(fields.campaign.control.value),
  });
  return { element, read };
}

/** People on the partner's team: rows of name, e-mail, phone; empty rows are left out. */
function contactsEditor(atLeastOne) {
  const rows = h("div", { class: "contact-rows" });
  const list = [];
  const add = h(
    "button",
    { type: "button", class: "secondary small", onclick: () => addRow(true) },
    "Add a person",
  );

  function renumber() {
    list.forEach((row, index) => {
      row.legend.textContent = `Person ${index + 1}`;
      for (const [name, item] of Object.entries(row.fields))
        item.control.dataset.path = `contacts.${index}.${name}`;
      row.remove.hidden = atLeastOne && list.length === 1;
      row.remove.setAttribute("aria-label", `Remove person ${index + 1}`);
    });
    add.disabled = list.length >= MAX_CONTACTS;
  }

  function addRow(focus) {
    const fields = {
      name: field({ path: "contacts.name", label: "Name", maxlength: 200, autocomplete: "name" }),
      email: field({
        path: "contacts.email",
        label: "E-mail",
        type: "email",
        maxlength: 254,
        autocomplete: "email",
      }),
      phone: field({
        path: "contacts.phone",
        label: "Phone",
        type: "tel",
        pattern: PHONE_PATTERN,
        autocomplete: "tel",
        hint: "Optional.",
      }),
    };
    const legend = h("legend");
    const remove = h("button", { type: "button", class: "link small" }, "Remove");
    const row = { fields, legend, remove };
    const element = h(
      "fieldset",
      { class: "contact" },
      legend,
      fields.name.element,
      fields.email.element,
      fields.phone.element,
      remove,
    );
    // A row in use needs a name and an e-mail; an empty one is simply left out.
    const sync = () => {
      const used =
        (atLeastOne && list[0] === row) ||
        Object.values(fields).some((f) => f.control.value.trim());
      fields.name.control.required = used;
      fields.email.control.required = used;
    };
    element.addEventListener("input", sync);
    remove.addEventListener("click", () => {
      list.splice(list.indexOf(row), 1);
      element.remove();
      renumber();
      add.focus();
    });
    list.push(row);
    rows.append(element);
    renumber();
    sync();
    if (focus) fields.name.control.focus();
  }

  addRow(false);
  const element = h(
    "fieldset",
    { class: "contacts" },
    h("legend", {}, "Your employees on this deal"),
    h("p", { class: "hint" }, `Up to ${MAX_CONTACTS} people. Leave a row empty to skip it.`),
    rows,
    add,
  );
  const read = () =>
    list
      .map((row) => ({
        name: row.fields.name.control.value.trim(),
        email: row.fields.email.control.value.trim(),
        phone: optional(row.fields.phone.control.value),
      }))
      .filter((person) => person.name || person.email || person.phone);
  return { element, read };
}

const FORMS = {
  accept: (lead) => {
    const deal = dealFields("deal", null, lead.campaign_id);
    const contacts = contactsEditor(false);
    return {
      title: "Accept this lead",
      intro: "Tell us about the deal you plan to pursue. The lead moves to Accepted.",
      submit: "Accept lead",
      fields: [deal.element, contacts.element],
      body: () => ({ action: "accept", deal: deal.read(), contacts: contacts.read() }),
    };
  },
  decline: (lead) => {
    const reason = field({
      path: "reason",
      label: "Reason",
      required: true,
      options: REASONS,
      placeholder: "Choose a reason",
    });
    const notes = field({
      path: "notes",
      label: "Notes",
      multiline: true,
      maxlength: 4000,
      hint: "Optional. Up to 4000 characters.",
    });
    return {
      title: "Decline this lead",
      // A lead sent with routing (it has an offer) may go to the referrer's next partner.
      intro: lead.offer
        ? "The lead is archived as declined and its contact data is erased here. It may be offered to another partner."
        : "The lead is archived as declined, the customer is told to choose another partner, and their contact data is erased.",
      submit: "Decline lead",
      danger: true,
      fields: [reason.element, notes.element],
      body: () => ({
        action: "decline",
        reason: reason.control.value,
        notes: optional(notes.control.value),
      }),
    };
  },
  // The same decline, with the reason fixed and the partner's other lead named, so the
  // service records which lead this one repeats.
  decline_duplicate: (lead) => {
    const notes = field({
      path: "notes",
      label: "Notes",
      multiline: true,
      maxlength: 4000,
      hint: "Optional. Up to 4000 characters.",
    });
    return {
      title: "Decline as a duplicate",
      intro:
        "The lead is archived as declined (reason: duplicate lead) and its contact data is erased. Your other lead of this customer stays as it is, so the customer is not asked to choose another partner.",
      submit: "Decline lead",
      danger: true,
      fields: notes.element,
      body: () => ({
        action: "decline",
        reason: "duplicate",
        duplicate_of: lead.possible_duplicate_of.lead_id,
        notes: optional(notes.control.value),
      }),
    };
  },
  update: (lead) => {
    const deal = dealFields("changes", lead.deal);
    return {
      title: "Edit the deal",
      intro: "Change what has changed; the rest stays as it is.",
      submit: "Save changes",
      fields: deal.element,
      body: () => {
        const now = deal.read();
        const before = lead.deal;
        const changes = {};
        for (const name of ["name", "estimated_close_date", "notes", "crm_id", "campaign_id"]) {
          if (
            now[name] !== undefined &&
            now[name] !== "" &&
            now[name] !== (before[name] ?? undefined)
          )
            changes[name] = now[name];
        }
        if (
          now.value.amount !== before.value.amount ||
          now.value.currency !== before.value.currency
        )
          changes.value = now.value;
        if (Object.keys(changes).length === 0)
          return { problem: "Nothing changed: change at least one field." };
        return { action: "update", changes };
      },
    };
  },
  add_contacts: () => {
    const contacts = contactsEditor(true);
    return {
      title: "Add employees",
      intro:
        "People of your company who work on this deal. Known e-mail addresses are not added twice.",
      submit: "Add employees",
      fields: contacts.element,
      body: () => ({ action: "add_contacts", contacts: contacts.read() }),
    };
  },
  won: () => {
    const notes = field({
      path: "notes",
      label: "Notes",
      multiline: true,
      maxlength: 4000,
      hint: "Optional. Up to 4000 characters.",
    });
    return {
      title: "Mark the deal as won",
      intro: "The lead is archived as won. Archived leads are read-only.",
      submit: "Mark as won",
      fields: notes.element,
      body: () => ({ action: "won", notes: optional(notes.control.value) }),
    };
  },
  lost: () => {
    const reason = field({
      path: "reason",
      label: "Reason",
      options: REASONS,
      placeholder: "No reason given",
    });
    const notes = field({
      path: "notes",
      label: "Notes",
      multiline: true,
      maxlength: 4000,
      hint: "Optional. Up to 4000 characters.",
    });
    return {
      title: "Mark the deal as lost",
      intro: "The lead is archived as lost. Archived leads are read-only.",
      submit: "Mark as lost",
      danger: true,
      fields: [reason.element, notes.element],
      body: () => ({
        action: "lost",
        reason: reason.control.value || undefined,
        notes: optional(notes.control.value),
      }),
    };
  },
};

/** What each stage allows, and the button that opens each form. */
const STAGE_ACTIONS = {
  received: [
    ["accept", "Accept"],
    ["decline", "Decline"],
  ],
  accepted: [
    ["update", "Edit"],
    ["add_contacts", "Add employees"],
    ["won", "Won"],
    ["lost", "Lost"],
  ],
  archived: [],
};

/** The actions a lead allows: its stage's, and declining a received possible
 * duplicate as such. */
export function leadActions(lead) {
  const allowed = STAGE_ACTIONS[lead.stage];
  if (lead.stage !== "received" || !lead.possible_duplicate_of) return allowed;
  return [...allowed, ["decline_duplicate", "Decline as duplicate"]];
}

const APPLIED = {
  "lead.accepted": "Lead accepted: it is now under Accepted.",
  // Not what the customer is told: that depends on the lead (the decline form says).
  "lead.declined": "Lead declined: it is archived and the customer's contact data erased.",
  "lead.updated": "Deal updated.",
  "lead.contacts_added": "Employees added.",
  "lead.won": "Deal marked as won: the lead is archived.",
  "lead.lost": "Deal marked as lost: the lead is archived.",
  "lead.favorited": "Added to favorites.",
  "lead.unfavorited": "Removed from favorites.",
  "lead.reopened": "Decline taken back: the lead is open again under Received.",
  "lead.activity_logged": "Noted: the deal is active, its idle time starts again.",
};

export function appliedText(status) {
  return status.event
    ? APPLIED[status.event] || "Done."
    : "Nothing to change: the lead already was so.";
}

export function refusalText(status) {
  const words = REFUSALS[status.reason] || "The service refused this action.";
  return `${words} (${status.reason}: ${status.detail})`;
}

/** Sends an action and follows it until decided. Answers the final status, or
 * throws the API's error (the caller shows it). */
export async function perform(lead, body, key, withVersion = true) {
  const location = await api.act(lead.lead_id, body, key, withVersion ? lead.version : null);
  return api.decided(location);
}

function clean(value) {
  return JSON.parse(JSON.stringify(value)); // drops the undefined fields
}

/** The form of one action on a lead. `done(status)` is told once it is decided. */
export function actionForm(kind, lead, { done, signedOut }) {
  const spec = FORMS[kind](lead);
  const status = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const submit = h(
    "button",
    { type: "submit", class: spec.danger ? "danger" : "primary" },
    spec.submit,
  );
  const heading = h("h3", { tabindex: "-1" }, spec.title);
  const form = h(
    "form",
    { class: "action-form", novalidate: true, "data-action": kind },
    heading,
    h("p", { class: "intro" }, spec.intro),
    spec.fields,
    h("div", { class: "form-actions" }, submit),
    status,
  );
  let key = null; // kept across retries of the same submission: then it is one action

  const say = (text, kind_ = "") => {
    status.textContent = text;
    status.className = `form-status ${kind_}`;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!checked(form)) {
      say("Please correct the marked fields.", "error");
      return;
    }
    const body = spec.body();
    if (body.problem) {
      say(body.problem, "error");
      return;
    }
    key = key || api.newKey();
    submit.disabled = true;
    say("Sending…", "busy");
    try {
      const location = await api.act(lead.lead_id, clean(body), key, lead.version);
      key = null; // taken: another submission is another action
      say("Sent. Waiting for the lead service…", "busy");
      const result = await api.decided(location);
      if (result.status === "pending")
        say("Still waiting for the lead service. Refresh in a moment.", "busy");
      else if (result.status === "rejected") say(refusalText(result), "error");
      done(result);
    } catch (error) {
      if (error.status === 401) return signedOut();
      if (error.status === 422 && error.problem.errors) {
        markServerErrors(form, error.problem.errors);
        say("The service found fields to correct: they are marked.", "error");
      } else if (error.status === 503) {
        say(
          "The service cannot take actions right now. Try again in a few seconds: it stays the same action.",
          "error",
        );
      } else {
        say(
          error.message || "The action could not be sent. Check your connection and try again.",
          "error",
        );
      }
    } finally {
      submit.disabled = false;
    }
  });
  return { form, heading };
}

function showError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  control.setAttribute("aria-invalid", message ? "true" : "false");
  if (!error) return;
  error.textContent = message;
  error.hidden = !message;
}

/** The browser's own checks of the limits above; the first wrong field gets the focus. */
function checked(form) {
  let first = null;
  for (const control of form.querySelectorAll("input, select, textarea")) {
    const message = control.checkValidity() ? "" : control.validationMessage;
    showError(control, message);
    if (message && !first) first = control;
  }
  if (first) first.focus();
  return first === null;
}

function markServerErrors(form, errors) {
  let first = null;
  for (const problem of errors) {
    const control = form.querySelector(`[data-path="${CSS.escape(problem.name)}"]`);
    if (control) {
      showError(control, problem.message);
      first = first || control;
    }
  }
  if (first) first.focus();
}
