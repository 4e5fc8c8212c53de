// Requests to the fleetpulse HTTP API, relative to the page's own server.

/** GET a JSON document; throws an Error naming the path and status on a non-2xx answer. */
export async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new Error(`GET ${path} failed with HTTP ${response.status}`);
  }
  return response.json();
}

/** Return the path of a vehicle endpoint, with the device id URL-encoded. */
export function vehiclePath(deviceId, suffix = "") {
  return `/v1/vehicles/${encodeURIComponent(deviceId)}${suffix}`;
}
