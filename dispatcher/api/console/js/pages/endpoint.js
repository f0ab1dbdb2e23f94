// One endpoint: what it is, its health, the chart of its attempts, its deliveries (filtered),
// and the actions on it (pages/actions.js).

import { abilities, api, current } from '../api.js';
import { drawChart } from '../chart.js';
import {
  DASH, count, facts, field, fromLocalInput, h, link, ms, percent, statusBadge, table, when,
} from '../dom.js';
import { alive, fail, sleep } from '../ui.js';
import { bulkReplayPanel, rotatePanel, statePanel, testEventPanel } from './actions.js';
import { healthBadge } from './endpoints.js';

const STATUSES = ['pending', 'succeeded', 'failed', 'suppressed'];
const HOUR = 3600 * 1000;

function summary(endpoint) {
  const metadata = Object.entries(endpoint.metadata || {});
  return facts([
    ['URL', h('span', { class: 'mono' }, endpoint.url)],
    ['State', healthBadge(endpoint)],
    endpoint.status === 'disabled' && ['Disabled because', endpoint.disabledReason || DASH],
    ['Description', endpoint.description || DASH],
    ['Organization', endpoint.organizationId],
    ['Events', endpoint.events ? endpoint.events.join(', ') : 'every type'],
    ['Signature', endpoint.signatureScheme],
    endpoint.publicKey && ['Public key', h('span', { class: 'mono' }, endpoint.publicKey)],
    ['Metadata', metadata.length
      ? h('ul', {}, metadata.map(([k, v]) => h('li', {}, h('span', { class: 'mono' }, k), ': ', String(v))))
      : DASH],
  ]);
}

function healthFacts(health) {
  if (!health) return h('p', { class: 'muted' }, 'No health figures yet.');
  return facts([
    ['Success, last hour', percent(health.successRate1h)],
    ['Success, last 24 h', percent(health.successRate24h)],
    ['Breaker', health.breaker || DASH],
    health.nextProbeAt && ['Next probe', when(health.nextProbeAt)],
    ['Consecutive failures', count(health.consecutiveFailures)],
    ['Latency p50 / p99', `${ms(health.latencyP50Ms)} / ${ms(health.latencyP99Ms)}`],
    ['Pending', count(health.pending)],
    ['Failed', count(health.failed)],
    ['Last success', when(health.lastSuccessAt)],
    ['Last failure', when(health.lastFailureAt)],
  ]);
}

const RANGES = [['1 h', 1], ['6 h', 6], ['24 h', 24], ['7 d', 168]];

// The chart over a range the user picks (the stats route chooses the bucket width).
async function chartPanel(id) {
  const area = h('div', { 'aria-live': 'polite' });
  const buttons = RANGES.map(([text, hours]) => h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => show(hours) }, text));
  const iso = (d) => d.toISOString().replace(/\.\d+Z$/, 'Z');
  async function show(hours) {
    RANGES.forEach(([, value], i) => buttons[i].setAttribute('aria-pressed', String(value === hours)));
    const until = new Date();
    const since = new Date(until.getTime() - hours * HOUR);
    try {
      const stats = await api('GET', `/v1/webhooks/${encodeURIComponent(id)}/stats`, { query: { since: iso(since), until: iso(until) } });
      area.replaceChildren(drawChart(stats, RANGES.find(([, value]) => value === hours)[0]));
    } catch (error) {
      area.replaceChildren(h('p', { class: 'muted' }, `No chart: ${error.message}`));
    }
  }
  await show(24);
  return h('div', {}, h('div', { class: 'row', role: 'group', 'aria-label': 'Chart range' }, buttons), area);
}

function deliveryColumns() {
  return [
    { title: 'Delivery', cell: (d) => link(d.id, 'deliveries', d.id) },
    { title: 'Type', cell: (d) => d.eventType },
    { title: 'Status', cell: (d) => statusBadge(d.status) },
    { title: 'Attempts', cell: (d) => String(d.attemptCount), num: true },
    { title: 'Waiting because', cell: (d) => d.waitingReason || DASH },
    { title: 'Next attempt', cell: (d) => (d.status === 'pending' ? when(d.nextAttemptAt) : DASH), nowrap: true },
    { title: 'Last HTTP status', cell: (d) => count(d.lastStatusCode), num: true },
    { title: 'Created', cell: (d) => when(d.createdAt), nowrap: true },
  ];
}

// The deliveries list: a filter form, a table, "load more"; refresh() reloads it.
function deliveriesSection(page, endpoint, types) {
  const status = h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'any'),
    STATUSES.map((s) => h('option', { value: s }, s)));
  const type = h('select', { id: 'filter-type', name: 'type' }, h('option', { value: '' }, 'any'),
    types.map((t) => h('option', { value: t }, t)));
  const since = h('input', { id: 'filter-since', name: 'since', type: 'datetime-local', step: '60' });
  const until = h('input', { id: 'filter-until', name: 'until', type: 'datetime-local', step: '60' });
  const holder = h('div', {});
  const more = h('p', {});
  const form = h('form', { class: 'inline panel', 'aria-label': 'Filter deliveries' },
    field('Status', status),
    field('Event type', type),
    field('Since (UTC)', since),
    field('Until (UTC)', until),
    h('button', { type: 'submit' }, 'Apply filters'));
  let shown = [];

  async function load(after) {
    const query = { status: status.value, type: type.value, since: fromLocalInput(since.value),
      until: fromLocalInput(until.value), limit: 50, after };
    const reply = await api('GET', `/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries`, { query });
    shown = after ? [...shown, ...reply.data] : reply.data;
    holder.replaceChildren(table(deliveryColumns(), shown, { empty: 'No deliveries match.', label: 'Deliveries' }));
    more.replaceChildren(reply.nextCursor
      ? h('button', { type: 'button', onclick: () => load(reply.nextCursor).catch(fail) }, 'Load more') : '');
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); load().catch(fail); });
  const section = h('section', { 'aria-labelledby': 'deliveries-title' },
    h('h2', { id: 'deliveries-title' }, 'Deliveries'), form, holder, more);
  const refresh = () => load();
  // Follow deliveries that are still pending for a while (after a replay, say).
  const follow = async (rounds = 30) => {
    for (let i = 0; i < rounds && alive(page); i += 1) {
      await load();
      if (!shown.some((d) => d.status === 'pending')) return;
      await sleep(2000);
    }
  };
  return { section, refresh, follow, ready: load() };
}

export async function endpointPage(page, id) {
  const can = abilities(current().who);
  const path = `/v1/webhooks/${encodeURIComponent(id)}`;
  let endpoint = await api('GET', path);
  const catalog = await api('GET', '/v1/event-types').catch(() => ({ data: [] }));
  const types = catalog.data.map((t) => t.type);

  const title = h('h1', {}, endpoint.description || endpoint.id);
  const about = h('div', {});
  const healthBox = h('div', {});
  const render = () => {
    title.textContent = endpoint.description || endpoint.id;
    about.replaceChildren(summary(endpoint));
    healthBox.replaceChildren(healthFacts(endpoint.health));
  };
  const reload = async () => {
    endpoint = await api('GET', path);
    render();
    return endpoint;
  };
  render();

  const deliveries = deliveriesSection(page, endpoint, types);
  const actions = [];
  if (can.write) {
    actions.push(testEventPanel(endpoint, types, deliveries.refresh), rotatePanel(endpoint),
      statePanel(() => endpoint, reload));
  }
  if (can.replay) actions.push(bulkReplayPanel(page, endpoint, { after: deliveries.follow, reload }));
  await deliveries.ready;
  return h('section', {},
    title,
    h('p', { class: 'muted mono' }, endpoint.id),
    h('div', { class: 'grid' },
      h('div', { class: 'panel', 'aria-labelledby': 'about-title' }, h('h2', { id: 'about-title' }, 'Endpoint'), about),
      h('div', { class: 'panel', 'aria-labelledby': 'health-title' }, h('h2', { id: 'health-title' }, 'Health'), healthBox)),
    h('section', { class: 'chart', 'aria-labelledby': 'chart-title' },
      h('h2', { id: 'chart-title' }, 'Attempts over time'), await chartPanel(endpoint.id)),
    actions.length ? h('section', { 'aria-labelledby': 'actions-title' },
      h('h2', { id: 'actions-title' }, 'Actions'), h('div', { class: 'grid' }, actions)) : '',
    deliveries.section);
}
