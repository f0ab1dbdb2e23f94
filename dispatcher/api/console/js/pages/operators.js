// On-call's pages: organizations, dead letters (their bytes as text when they are UTF-8,
// else base64) with retry, and bulk replay jobs (every organization's for operators, the
// organization's own otherwise).

import { api } from '../api.js';
import { DASH, action, badge, count, facts, h, link, table, when } from '../dom.js';
import { announce, fail } from '../ui.js';

const enc = encodeURIComponent;

// A paged list: the first page now, a "Load more" button while there is a next cursor.
async function pagedTable(path, columns, { query = {}, empty, label }) {
  const holder = h('div', {});
  const more = h('p', {});
  let rows = [];
  async function load(after) {
    const reply = await api('GET', path, { query: { ...query, limit: 50, after } });
    rows = after ? [...rows, ...reply.data] : reply.data;
    holder.replaceChildren(table(columns, rows, { empty, label }));
    more.replaceChildren(reply.nextCursor
      ? h('button', { type: 'button', onclick: () => load(reply.nextCursor).catch(fail) }, 'Load more') : '');
  }
  await load();
  return h('div', {}, holder, more);
}

export async function orgsPage() {
  const columns = [
    { title: 'Organization', cell: (o) => h('span', { class: 'mono' }, o.id) },
    { title: 'Parent', cell: (o) => o.parentOrganizationId || DASH },
    { title: 'Status', cell: (o) => o.status },
    { title: 'Endpoints', cell: (o) => link('Endpoints', 'orgs', o.id, 'endpoints') },
  ];
  return h('section', {}, h('h1', {}, 'Organizations'),
    await pagedTable('/v1/organizations', columns, { empty: 'No organizations.', label: 'Organizations' }));
}

export async function deadLettersPage() {
  const columns = [
    { title: 'Dead letter', cell: (d) => link(d.id, 'dead-letters', d.id) },
    { title: 'Reason', cell: (d) => d.reason },
    { title: 'Detail', cell: (d) => d.detail || DASH, wrap: true },
    { title: 'Where', cell: (d) => `${d.topic} [${d.partition}] @ ${d.offset}` },
    { title: 'Size', cell: (d) => count(d.size), num: true },
    { title: 'Received', cell: (d) => when(d.receivedAt), nowrap: true },
    { title: 'Retried', cell: (d) => when(d.retriedAt), nowrap: true },
  ];
  return h('section', {}, h('h1', {}, 'Dead letters'),
    h('p', { class: 'muted' }, 'Records that could not become events, newest first.'),
    await pagedTable('/v1/dead-letters', columns, { empty: 'No dead letters.', label: 'Dead letters' }));
}

// Bytes (base64 from the API) as UTF-8 text when they are valid UTF-8, else as base64.
export function bytesView(base64, label) {
  if (base64 === null || base64 === undefined) return h('p', { class: 'muted' }, `No ${label}.`);
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return h('div', {}, h('p', { class: 'muted' }, `${label}: ${bytes.length} bytes, UTF-8 text`), h('pre', { 'aria-label': label }, text));
  } catch {
    return h('div', {}, h('p', { class: 'muted' }, `${label}: ${bytes.length} bytes, not UTF-8 — shown as base64`), h('pre', { 'aria-label': label }, base64));
  }
}

export async function deadLetterPage(page, id) {
  const letter = await api('GET', `/v1/dead-letters/${enc(id)}`);
  const result = h('div', { 'aria-live': 'polite' });
  const retry = action('Retry this record', async () => {
    try {
      const done = await api('POST', `/v1/dead-letters/${enc(id)}/retry`, { body: {} });
      result.replaceChildren(h('p', {}, `Retried: event ${done.eventId}, ${done.deliveriesCreated} deliveries created${done.duplicate ? ' (the event existed already)' : ''}.`));
      announce('Dead letter retried.');
    } catch (error) {
      fail(error);
    }
  }, { class: 'primary' });
  return h('section', {}, h('h1', {}, `Dead letter ${id}`),
    facts([
      ['Reason', letter.reason],
      ['Detail', letter.detail || DASH],
      ['Topic / partition / offset', `${letter.topic} / ${letter.partition} / ${letter.offset}`],
      ['Received', when(letter.receivedAt)],
      ['Retried', when(letter.retriedAt)],
    ]),
    h('div', { class: 'panel' }, retry, result),
    h('h2', {}, 'Key'), bytesView(letter.key, 'Key'),
    h('h2', {}, 'Value'), bytesView(letter.value, 'Value'));
}

export async function replaysPage() {
  const columns = [
    { title: 'Job', cell: (j) => h('span', { class: 'mono' }, j.id) },
    { title: 'Status', cell: (j) => badge(j.status, j.status === 'succeeded' ? 'ok' : 'warn') },
    { title: 'Progress', cell: (j) => `${j.done} of ${j.total}`, num: true },
    { title: 'Endpoint', cell: (j) => link(j.endpointId, 'endpoints', j.endpointId) },
    { title: 'Organization', cell: (j) => j.organizationId },
    { title: 'Statuses', cell: (j) => j.statuses.join(', ') },
    { title: 'Reason', cell: (j) => j.reason || DASH, wrap: true },
    { title: 'Created', cell: (j) => when(j.createdAt), nowrap: true },
  ];
  return h('section', {}, h('h1', {}, 'Replay jobs'),
    h('p', { class: 'muted' }, 'Bulk replays, newest first.'),
    await pagedTable('/v1/replays', columns, { empty: 'No replay jobs.', label: 'Replay jobs' }));
}
