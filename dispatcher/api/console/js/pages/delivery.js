// One delivery: why it waits and when it is next tried, every attempt (status, failure kind,
// duration, the receiver's response excerpt — as text), its replay history, the event it
// carries, and replaying it.

import { abilities, api, current } from '../api.js';
import { DASH, action, count, facts, field, h, link, statusBadge, table, when } from '../dom.js';
import { announce, fail } from '../ui.js';

const enc = encodeURIComponent;

const WAITING = {
  retry_scheduled: 'a failed attempt put it back on the retry ladder',
  breaker_open: 'the endpoint\'s circuit breaker is open: it goes at the next probe',
  rate_limited: 'the endpoint\'s rate limit paces it',
  endpoint_busy: 'the endpoint\'s concurrent attempts and backlog are full',
  replay_queued: 'it was replayed and waits for its turn',
  shutdown: 'a replica stopped before attempting it',
  attempt_error: 'the attempt failed inside the dispatcher; it is retried soon',
};

function waiting(delivery) {
  if (delivery.status !== 'pending') return null;
  if (!delivery.waitingReason) return ['Waiting', 'no: an attempt is in flight or starting'];
  const why = WAITING[delivery.waitingReason];
  return ['Waiting because', h('span', {}, h('strong', {}, delivery.waitingReason), why ? ` — ${why}` : '')];
}

function attemptColumns() {
  return [
    { title: '#', cell: (a) => String(a.attempt), num: true },
    { title: 'Started', cell: (a) => when(a.startedAt), nowrap: true },
    { title: 'Outcome', cell: (a) => statusBadge(a.succeeded ? 'succeeded' : 'failed') },
    { title: 'HTTP status', cell: (a) => count(a.statusCode), num: true },
    { title: 'Failure kind', cell: (a) => a.failureKind || DASH },
    { title: 'Duration', cell: (a) => `${Math.round(a.durationMs)} ms`, num: true },
    { title: 'Detail', cell: (a) => a.detail || DASH, wrap: true },
    { title: 'Response excerpt', cell: (a) => (a.responseExcerpt ? h('pre', {}, a.responseExcerpt) : DASH), wrap: true },
  ];
}

function replayColumns() {
  return [
    { title: 'At', cell: (r) => when(r.at), nowrap: true },
    { title: 'By (key)', cell: (r) => h('span', { class: 'mono' }, r.actor) },
    { title: 'Reason', cell: (r) => r.reason || DASH, wrap: true },
    { title: 'Bulk job', cell: (r) => r.replayJobId || DASH },
  ];
}

async function eventBox(delivery) {
  try {
    const event = await api('GET', `/v1/events/${enc(delivery.eventId)}`);
    return h('pre', { 'aria-label': 'Event data' }, JSON.stringify(event.data, null, 2));
  } catch (error) {
    return h('p', { class: 'muted' }, `The event is not readable: ${error.message}`);
  }
}

export async function deliveryPage(page, id) {
  const can = abilities(current().who);
  const body = h('div', {});
  const render = async (delivery) => {
    const reason = h('input', { id: 'replay-one-reason', type: 'text', maxlength: '500', placeholder: 'why (recorded)' });
    const replay = can.replay ? h('div', { class: 'panel row' },
      field('Reason', reason),
      action('Replay this delivery', async () => {
        try {
          const replayed = await api('POST', `/v1/deliveries/${enc(id)}/replay`, { body: { reason: reason.value || undefined } });
          announce('Delivery replayed: it is pending again.');
          await render(replayed);
        } catch (error) {
          fail(error);
        }
      }, { class: 'primary' })) : '';
    body.replaceChildren(
      facts([
        ['Status', statusBadge(delivery.status)],
        delivery.reason && ['Reason', delivery.reason],
        waiting(delivery),
        delivery.status === 'pending' && ['Next attempt', when(delivery.nextAttemptAt)],
        ['Attempts', String(delivery.attemptCount)],
        ['Event', h('span', {}, h('span', { class: 'mono' }, delivery.eventId), ` (${delivery.eventType})`)],
        ['Endpoint', link(delivery.endpointId, 'endpoints', delivery.endpointId)],
        ['Created', when(delivery.createdAt)],
        ['Last attempt', when(delivery.lastAttemptAt)],
      ]),
      replay,
      h('h2', {}, 'Attempts'),
      table(attemptColumns(), delivery.attempts, { empty: 'No attempt yet.', label: 'Attempts' }),
      h('h2', {}, 'Replay history'),
      table(replayColumns(), delivery.replays, { empty: 'Never replayed.', label: 'Replay history' }),
      h('h2', {}, 'Event data'),
      await eventBox(delivery));
  };
  await render(await api('GET', `/v1/deliveries/${enc(id)}`));
  return h('section', {}, h('h1', {}, `Delivery ${id}`), body);
}
