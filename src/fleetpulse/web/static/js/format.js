// Formatting and small helpers shared by the dashboard modules.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for use inside HTML markup and attribute values. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

/** Format a number with a unit, or an en dash when the value is unknown. */
export function formatValue(value, unit, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${Number(value).toFixed(digits)}${unit ? " " + unit : ""}`;
}

/** Format how long ago an epoch-millisecond time was, such as "12 s ago" or "3 h ago". */
export function formatAgo(tsMs, nowMs = Date.now()) {
  if (!tsMs) return "never";
  const seconds = Math.max(0, Math.round((nowMs - tsMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** Format an epoch-millisecond time as local wall-clock time (HH:MM:SS). */
export function formatClock(tsMs) {
  if (!tsMs) return "–";
  return new Date(tsMs).toLocaleTimeString([], { hour12: false });
}

/** Format a duration in seconds as "1 h 05 min", "12 min" or "40 s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Turn an event type such as "harsh_braking" into the label "Harsh braking". */
export function eventLabel(type) {
  const words = type.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Return the epoch milliseconds of the last local midnight. */
export function localMidnightMs(nowMs = Date.now()) {
  const midnight = new Date(nowMs);
  midnight.setHours(0, 0, 0, 0);
  return midnight.getTime();
}

/** Call `render` at most once per `intervalMs`, always after the latest request. */
export function throttle(render, intervalMs) {
  let timer = null;
  let lastMs = 0;
  return () => {
    if (timer !== null) return;
    const waitMs = Math.max(0, lastMs + intervalMs - performance.now());
    timer = setTimeout(() => {
      timer = null;
      lastMs = performance.now();
      render();
    }, waitMs);
  };
}
