// Endpoints with their health, the failing ones first; and, for operators, the failing
// endpoints of every organization.

import { abilities, api, current } from '../api.js';
import { DASH, badge, count, h, link, percent, table, when } from '../dom.js';

// Higher is worse: an open breaker, then a disabled endpoint, then recent failures.
export function severity(endpoint) {
  const health = endpoint.health || {};
  if (health.breaker === 'open') return 5;
  if (endpoint.status === 'disabled' && endpoint.disabledReason !== 'manual') return 4;
  if (health.breaker === 'half_open') return 3;
  if ((health.consecutiveFailures || 0) > 0) return 2;
  if (health.successRate1h !== null && health.successRate1h !== undefined && health.successRate1h < 1) return 1;
  if (endpoint.status === 'disabled') return 1;
  return 0;
}

export function failingFirst(endpoints) {
  const rate = (e) => (e.health && e.health.successRate24h !== null && e.health.successRate24h !== undefined
    ? e.health.successRate24h : 1);
  return [...endpoints].sort((a, b) => severity(b) - severity(a) || rate(a) - rate(b) || a.id.localeCompare(b.id));
}

export function healthBadge(endpoint) {
  const health = endpoint.health;
  if (endpoint.status === 'disabled') return badge(`disabled: ${endpoint.disabledReason || 'unknown'}`, 'bad');
  if (!health) return badge('no data', 'idle');
  if (health.breaker === 'open') return badge('breaker open', 'bad');
  if (health.breaker === 'half_open') return badge('probing', 'warn');
  if ((health.consecutiveFailures || 0) > 0) return badge(`failing ×${health.consecutiveFailures}`, 'bad');
  if (health.successRate1h !== null && health.successRate1h < 1) return badge('degraded', 'warn');
  if (health.successRate1h === null && health.successRate24h === null) return badge('no traffic', 'idle');
  return badge('healthy', 'ok');
}

function name(endpoint) {
  return [link(endpoint.description || endpoint.id, 'endpoints', endpoint.id),
    h('div', { class: 'muted mono' }, endpoint.url)];
}

const health = (field) => (e) => (e.health ? e.health[field] : null);

export function endpointColumns({ withOrg = false } = {}) {
  return [
    { title: 'Endpoint', cell: name, wrap: true },
    withOrg && { title: 'Organization', cell: (e) => link(e.organizationId, 'orgs', e.organizationId, 'endpoints') },
    { title: 'State', cell: healthBadge },
    { title: 'Success 1 h', cell: (e) => percent(health('successRate1h')(e)), num: true },
    { title: 'Success 24 h', cell: (e) => percent(health('successRate24h')(e)), num: true },
    { title: 'Breaker', cell: (e) => health('breaker')(e) || DASH },
    { title: 'Pending', cell: (e) => count(health('pending')(e)), num: true },
    { title: 'Failed', cell: (e) => count(health('failed')(e)), num: true },
    { title: 'Last failure', cell: (e) => when(health('lastFailureAt')(e)), nowrap: true },
  ].filter(Boolean);
}

async function allPages(path, options) {
  const found = [];
  let after;
  for (let pages = 0; pages < 10; pages += 1) { // at most 1,000 endpoints on one screen
    const reply = await api('GET', path, { ...options, query: { ...(options.query || {}), limit: 100, after } });
    found.push(...reply.data);
    after = reply.nextCursor;
    if (!after) break;
  }
  return { found, more: Boolean(after) };
}

export async function endpointsPage(page, { org }) {
  const can = abilities(current().who);
  if (can.operator && !org) {
    return h('section', {}, h('h1', {}, 'Endpoints'),
      h('p', {}, 'Operators list endpoints one organization at a time: pick one under ',
        link('Organizations', 'orgs'), ', or see the ', link('failing endpoints', 'failing'), ' of all of them.'));
  }
  const { found, more } = await allPages('/v1/webhooks', { org });
  const sorted = failingFirst(found);
  const failing = sorted.filter((e) => severity(e) > 0).length;
  return h('section', {},
    h('h1', {}, org ? `Endpoints of ${org}` : 'Endpoints'),
    h('p', { class: 'muted' }, `${found.length} endpoint${found.length === 1 ? '' : 's'}, ${failing} needing attention, failing first.`,
      more ? ' Only the first 1,000 are shown.' : ''),
    table(endpointColumns(), sorted, { empty: 'No endpoints yet.', label: 'Endpoints' }));
}

export async function failingPage(page) {
  const { found, more } = await allPages('/v1/webhooks', { query: { health: 'failing' } });
  return h('section', {},
    h('h1', {}, 'Failing endpoints'),
    h('p', { class: 'muted' }, 'Every organization\'s endpoints that are failing now, worst first.',
      more ? ' Only the first 1,000 are shown.' : ''),
    table(endpointColumns({ withOrg: true }), failingFirst(found), { empty: 'No endpoint is failing.', label: 'Failing endpoints' }));
}
