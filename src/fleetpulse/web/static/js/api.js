// Requests to the fleetpulse HTTP API, relative to the page's own server, with the API key
// that the server requires when [auth] is enabled.

const KEY_STORAGE = "fleetpulse.apiKey";

let pendingPrompt = null;

/**
 * Return the API key entered in this tab, or "" without one.
 *
 * The key is kept in sessionStorage: it survives reloads but not closing the tab, so a
 * later user of a shared browser does not find it, at the cost of entering it per tab.
 */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/**
 * Show the key dialog with `message` and resolve once a key is entered and stored.
 * Concurrent callers (the poller, the live stream) share one dialog.
 */
export function askForKey(message) {
  if (!pendingPrompt) {
    pendingPrompt = showKeyDialog(message).finally(() => {
      pendingPrompt = null;
    });
  }
  return pendingPrompt;
}

function showKeyDialog(message) {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  document.getElementById("key-message").textContent = message;
  input.value = "";
  return new Promise((resolve) => {
    const submit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      form.removeEventListener("submit", submit);
      dialog.removeEventListener("cancel", keepOpen);
      dialog.close();
      resolve(key);
    };
    // Escape would close the dialog with no key, and every request would wait forever.
    const keepOpen = (event) => event.preventDefault();
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", keepOpen);
    dialog.showModal();
    input.focus();
  });
}

/**
 * GET a JSON document. On 401 or 403 it shows the key dialog and sends the request again.
 * Other non-2xx responses throw an Error naming the path and status.
 */
export async function getJson(path) {
  for (;;) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(path, { headers });
    if (response.status === 401 || response.status === 403) {
      await askForKey(await errorMessage(response));
      continue;
    }
    if (!response.ok) {
      throw new Error(`GET ${path} failed with HTTP ${response.status}`);
    }
    return response.json();
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error.message;
  } catch {
    return `the server responded ${response.status}; enter an API key with scope read`;
  }
}

/** Return the path of a vehicle endpoint, with the device id URL-encoded. */
export function vehiclePath(deviceId, suffix = "") {
  return `/v1/vehicles/${encodeURIComponent(deviceId)}${suffix}`;
}
