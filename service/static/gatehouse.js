// Gatehouse console: WebAuthn ceremonies and action-bound step-up.
// Every admin action: POST /admin/api/challenge {action, params} -> navigator.credentials.get()
// -> POST the action with {params, assertion}. The server binds the challenge to (admin, action, params).
"use strict";

function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function say(text, error) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || data.title || ("HTTP " + response.status));
  return data;
}

async function getAssertion(options) {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  return (await navigator.credentials.get({publicKey})).toJSON();
}

async function createCredential(options) {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  return (await navigator.credentials.create({publicKey})).toJSON();
}

const ENDPOINTS = {
  "keys.add": "/admin/api/keys/add", "keys.remove": "/admin/api/keys/remove",
  "admins.add": "/admin/api/admins/add", "admins.remove": "/admin/api/admins/remove",
  "clients.create": "/admin/api/clients/create", "clients.revoke": "/admin/api/clients/revoke",
  "clients.token": "/admin/api/clients/token", "clients.rotate": "/admin/api/clients/rotate",
  "sync.confirm": "/admin/api/sync/confirm", "sync.discard": "/admin/api/sync/discard",
};

async function stepUp(action, params) {
  const options = await post("/admin/api/challenge", {action, params});
  say("Touch your security key to confirm " + action + "…");
  const assertion = await getAssertion(options);
  return post(ENDPOINTS[action] || "/admin/api/" + action.replace(".", "/"), {params, assertion});
}

async function run(action, params) {
  if (action === "signin") {
    const assertion = await getAssertion(await post("/admin/api/login/begin"));
    location.href = (await post("/admin/api/login/finish", {assertion})).redirect;
  } else if (action === "enroll") {
    const token = params.token;
    const credential = await createCredential(await post(`/admin/api/enroll/${token}/begin`));
    const name = document.getElementById("key-name").value;
    location.href = (await post(`/admin/api/enroll/${token}/finish`, {credential, name})).redirect;
  } else if (action === "logout") {
    location.href = (await post("/admin/logout")).redirect;
  } else if (action === "keys.add") {
    const options = await stepUp(action, params);
    say("Now touch the new key to register it…");
    await post("/admin/api/keys/finish", {credential: await createCredential(options)});
    location.reload();
  } else {
    const result = await stepUp(action, params);
    const shown = result.secret || result.token || result.enrollment_url;
    if (shown) {
      const box = document.getElementById("secret");
      box.textContent = Object.entries(result).filter(([k]) => k !== "ok").map(([k, v]) => `${k}: ${v}`).join("\n")
        + "\n\nCopy it now: it will not be shown again.";
      box.hidden = false;
      say("Done.");
    } else {
      location.reload();
    }
  }
}

function paramsOfForm(form) {
  const params = {};
  for (const [key, value] of new FormData(form)) {
    if (key === "scopes") (params.scopes = params.scopes || []).push(value);
    else params[key] = value;
  }
  return params;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  event.preventDefault();
  const {action, ...params} = button.dataset;
  run(action, params).catch((error) => say(error.message, true));
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-action]");
  if (!form) return;
  event.preventDefault();
  run(form.dataset.action, paramsOfForm(form)).catch((error) => say(error.message, true));
});
