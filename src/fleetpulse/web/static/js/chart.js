// A small line chart drawn on a canvas: one series over time, with its range labelled.

/** Draw `points` ([ts_ms, value] pairs, in time order) between `fromMs` and `toMs`. */
export function drawLineChart(canvas, points, { color, fromMs, toMs }) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 160;
  const height = canvas.clientHeight || 60;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);

  const values = points.map((point) => point[1]);
  if (!values.length) {
    context.fillStyle = "#9aa1ab";
    context.font = "11px system-ui, sans-serif";
    context.fillText("no data", 6, height / 2 + 4);
    return;
  }
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < 1e-6) {
    low -= 1;
    high += 1;
  }
  const spanMs = Math.max(1, toMs - fromMs);
  const x = (tsMs) => ((tsMs - fromMs) / spanMs) * (width - 2) + 1;
  const y = (value) => height - 4 - ((value - low) / (high - low)) * (height - 16);

  context.strokeStyle = "#eef0f3";
  context.beginPath();
  context.moveTo(0, height - 4);
  context.lineTo(width, height - 4);
  context.stroke();

  context.strokeStyle = color;
  context.lineWidth = 1.5;
  context.beginPath();
  points.forEach(([tsMs, value], index) => {
    if (index === 0) context.moveTo(x(tsMs), y(value));
    else context.lineTo(x(tsMs), y(value));
  });
  context.stroke();

  context.fillStyle = "#6b7380";
  context.font = "10px system-ui, sans-serif";
  context.fillText(`${high.toFixed(0)}`, 2, 10);
}
