// The read API as the page uses it: the bearer token (sessionStorage only), JSON
// requests, RFC 9457 problems as errors, and actions followed until decided.

const TOKEN = "leads.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/** Takes a token handed over in the URL fragment (`#token=...`) into sessionStorage,
 * and removes it from the address bar and the history. */
export function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN, token.trim());
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

/** The token's claims, read for display only (the API verifies it). */
export function claims() {
  const value = token();
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

async function request(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token()}`, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const answer = await fetch(path, init);
  const text = await answer.text();
  const data = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    throw new ApiError(answer.status, data);
  }
  return { data, headers: answer.headers };
}

export async function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== false) query.set(name, String(value));
  }
  const suffix = query.toString() ? `?${query}` : "";
  return (await request("GET", path + suffix)).data;
}

/** A new Idempotency-Key: 32 hex digits from the browser's random source. */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Sends an action; answers the status location once the API has taken it (202). */
export async function act(leadId, body, key, version) {
  const headers = { "Idempotency-Key": key };
  if (version) headers["If-Match"] = `"${version}"`;
  const path = `/v1/leads/${encodeURIComponent(leadId)}/actions`;
  const answer = await request("POST", path, { body, headers });
  return answer.headers.get("Location") || `/v1/actions/${answer.data.message_id}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls an action's status until the lifecycle rules have decided it, or `patience` ms. */
export async function decided(location, patience = 60000) {
  const until = Date.now() + patience;
  let wait = 150;
  for (;;) {
    const status = (await request("GET", location)).data;
    if (status.status !== "pending" || Date.now() > until) return status;
    await sleep(wait);
    wait = Math.min(wait * 1.5, 2000);
  }
}
