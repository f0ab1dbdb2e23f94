// The attempts chart of an endpoint, drawn as inline SVG from GET /v1/webhooks/{id}/stats:
// stacked bars of successes and failures per bucket (left axis) and the p50 / p99 latency
// lines (right axis). A table with the same figures follows for screen readers.

import { h, svg } from './dom.js';

const W = 720;
const H = 220;
const PAD = { left: 40, right: 52, top: 12, bottom: 26 };

function clock(iso) {
  return iso.slice(11, 16);
}

function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((n) => n >= value);
}

function line(points, cls) {
  const drawn = points.filter(([, y]) => y !== null);
  if (drawn.length === 0) return null;
  if (drawn.length === 1) {
    const [[x, y]] = drawn;
    return svg('circle', { cx: x, cy: y, r: 3, class: cls });
  }
  return svg('polyline', { class: cls, points: drawn.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ') });
}

export function drawChart(stats, range = '24 h') {
  const buckets = stats.buckets || [];
  const total = (b) => b.succeeded + b.failed;
  const attempts = buckets.reduce((n, b) => n + total(b), 0);
  if (attempts === 0) return h('p', { class: 'muted' }, `No attempts in the last ${range}.`);
  const succeeded = buckets.reduce((n, b) => n + b.succeeded, 0);
  const countMax = niceMax(Math.max(...buckets.map(total)));
  const latencyMax = niceMax(Math.max(1, ...buckets.map((b) => b.latencyP99Ms || b.latencyP50Ms || 0)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / buckets.length;
  const barW = Math.max(1, step * 0.7);
  const yCount = (n) => PAD.top + plotH - (n / countMax) * plotH;
  const yLatency = (v) => (v === null || v === undefined ? null : PAD.top + plotH - (v / latencyMax) * plotH);
  const x = (i) => PAD.left + i * step + (step - barW) / 2;

  const bars = buckets.flatMap((b, i) => [
    b.succeeded > 0 ? svg('rect', { class: 'ok', x: x(i), width: barW, y: yCount(b.succeeded), height: plotH + PAD.top - yCount(b.succeeded) }) : null,
    b.failed > 0 ? svg('rect', { class: 'bad', x: x(i), width: barW, y: yCount(total(b)), height: yCount(b.succeeded) - yCount(total(b)) }) : null,
  ]);
  const centre = (i) => x(i) + barW / 2;
  const labels = [0, Math.floor(buckets.length / 2), buckets.length - 1]
    .filter((i, n, all) => all.indexOf(i) === n)
    .map((i) => svg('text', { x: centre(i), y: H - 8, 'text-anchor': 'middle' }, clock(buckets[i].start)));
  const described = `${attempts} attempts in the last ${range}: ${succeeded} succeeded, ${attempts - succeeded} failed.`;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': described },
    svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }),
    svg('text', { x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end' }, String(countMax)),
    svg('text', { x: PAD.left - 6, y: PAD.top + plotH, 'text-anchor': 'end' }, '0'),
    svg('text', { x: W - PAD.right + 6, y: PAD.top + 8 }, `${latencyMax} ms`),
    bars,
    line(buckets.map((b, i) => [centre(i), yLatency(b.latencyP50Ms)]), 'p50'),
    line(buckets.map((b, i) => [centre(i), yLatency(b.latencyP99Ms)]), 'p99'),
    labels);
  const legend = h('ul', { class: 'legend' },
    [['ok', 'succeeded'], ['bad', 'failed'], ['p50', 'latency p50'], ['p99', 'latency p99']]
      .map(([cls, text]) => h('li', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text)));
  const rows = buckets.filter((b) => total(b) > 0).map((b) =>
    h('tr', {}, h('td', {}, b.start), h('td', {}, String(b.succeeded)), h('td', {}, String(b.failed)),
      h('td', {}, b.latencyP50Ms === null ? '—' : String(Math.round(b.latencyP50Ms))),
      h('td', {}, b.latencyP99Ms === null ? '—' : String(Math.round(b.latencyP99Ms)))));
  const data = h('details', {}, h('summary', {}, 'The figures as a table'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Bucket start', 'Succeeded', 'Failed', 'p50 ms', 'p99 ms'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
  return h('figure', { class: 'panel' }, chart, legend, h('figcaption', { class: 'muted' }, described), data);
}
