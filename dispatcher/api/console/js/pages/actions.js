// The actions on an endpoint: send a test event, rotate the secret (shown once), disable and
// enable, and bulk replay (a dry-run count, a confirmation, then live progress).

import { api } from '../api.js';
import { action, field, fromLocalInput, h, link, toLocalInput } from '../dom.js';
import { alive, announce, fail, sleep } from '../ui.js';

const enc = encodeURIComponent;

function panel(title, id, ...children) {
  return h('div', { class: 'panel', role: 'group', 'aria-labelledby': id }, h('h3', { id }, title), ...children);
}

export function testEventPanel(endpoint, types, refresh) {
  const select = h('select', { id: 'test-type', name: 'type' },
    types.map((t) => h('option', { value: t, selected: t === 'webhook.test' }, t)));
  const result = h('p', { 'aria-live': 'polite' });
  const send = action('Send test event', async () => {
    try {
      const sent = await api('POST', `/v1/webhooks/${enc(endpoint.id)}/test`, { body: { type: select.value } });
      result.replaceChildren(`Sent ${sent.type} as ${sent.eventId}: `,
        sent.deliveryId ? link(`delivery ${sent.deliveryId}`, 'deliveries', sent.deliveryId) : 'no delivery created');
      announce('Test event sent.');
      await refresh();
    } catch (error) {
      fail(error);
    }
  }, { class: 'primary' });
  return panel('Send a test event', 'test-title',
    h('div', { class: 'row' }, field('Test event type', select), send), result);
}

export function rotatePanel(endpoint) {
  const shown = h('div', { 'aria-live': 'polite' });
  const confirmBox = h('div', {});
  const ask = action('Rotate secret…', async () => {
    confirmBox.replaceChildren(h('p', {}, 'The current secret keeps signing (alongside the new one) for 24 hours, so receivers can switch over.'),
      h('div', { class: 'row' }, action('Rotate now', rotate, { class: 'danger' }),
        h('button', { type: 'button', onclick: () => { confirmBox.replaceChildren(); ask.focus(); } }, 'Cancel')));
    confirmBox.querySelector('button').focus();
  });
  async function rotate() {
    try {
      const rotated = await api('POST', `/v1/webhooks/${enc(endpoint.id)}/rotate-secret`, { body: {} });
      confirmBox.replaceChildren();
      const value = rotated.secret || rotated.publicKey;
      const what = rotated.secret ? 'New signing secret' : 'New public key';
      const code = h('code', { id: 'new-secret' }, value);
      const copy = action('Copy', async () => {
        try {
          await navigator.clipboard.writeText(value);
          announce(`${what} copied.`);
        } catch {
          fail({ message: 'The browser refused the clipboard: select the text and copy it.' });
        }
      });
      shown.replaceChildren(h('p', {}, h('strong', {}, `${what} (shown once — it is gone when you leave this page):`)),
        h('div', { class: 'secret' }, code, copy),
        h('p', { class: 'muted' }, `The previous secret stays valid until ${rotated.previousSecretExpiresAt}.`));
      copy.focus();
      announce('Secret rotated.');
    } catch (error) {
      fail(error);
    }
  }
  return panel('Rotate the signing secret', 'rotate-title', h('div', { class: 'row' }, ask), confirmBox, shown);
}

export function statePanel(getEndpoint, reload) {
  const box = h('div', {});
  const render = () => {
    const endpoint = getEndpoint();
    const change = (verb) => async () => {
      try {
        await api('POST', `/v1/webhooks/${enc(endpoint.id)}/${verb}`, { body: {} });
        await reload();
        announce(verb === 'enable' ? 'Endpoint enabled.' : 'Endpoint disabled.');
        render();
        box.querySelector('button').focus();
      } catch (error) {
        fail(error);
      }
    };
    if (endpoint.status === 'disabled') {
      box.replaceChildren(h('p', {}, `Disabled (reason: ${endpoint.disabledReason || 'unknown'}). Its pending deliveries are kept and resume once enabled.`),
        action('Enable endpoint', change('enable'), { class: 'primary' }));
      return;
    }
    const confirmBox = h('div', {});
    const ask = action('Disable…', async () => {
      confirmBox.replaceChildren(h('p', {}, 'Deliveries stop (reason: manual) and wait until the endpoint is enabled again.'),
        h('div', { class: 'row' }, action('Disable endpoint', change('disable'), { class: 'danger' }),
          h('button', { type: 'button', onclick: () => { confirmBox.replaceChildren(); ask.focus(); } }, 'Cancel')));
      confirmBox.querySelector('button').focus();
    });
    box.replaceChildren(h('p', {}, 'Enabled: deliveries flow.'), ask, confirmBox);
  };
  render();
  return panel('Enable or disable', 'state-title', box);
}

const REPLAYABLE = ['failed', 'pending', 'succeeded', 'suppressed'];

export function bulkReplayPanel(page, endpoint, { after, reload }) {
  const since = h('input', { id: 'replay-since', type: 'datetime-local', step: '60', required: true,
    value: toLocalInput(new Date(Date.now() - 24 * 3600 * 1000)) });
  const until = h('input', { id: 'replay-until', type: 'datetime-local', step: '60' });
  const boxes = REPLAYABLE.map((s) => h('input', { type: 'checkbox', id: `replay-${s}`, value: s, checked: s === 'failed' }));
  const reason = h('input', { id: 'replay-reason', type: 'text', maxlength: '500', placeholder: 'why (recorded)' });
  const step = h('div', { 'aria-live': 'polite' });
  const selection = () => ({
    since: fromLocalInput(since.value),
    until: fromLocalInput(until.value),
    status: boxes.filter((b) => b.checked).map((b) => b.value),
    reason: reason.value || undefined,
  });
  const path = `/v1/webhooks/${enc(endpoint.id)}/replay`;

  async function watch(job) {
    const bar = h('progress', { max: String(Math.max(job.total, 1)), value: String(job.done), 'aria-labelledby': 'replay-progress' });
    const text = h('p', { id: 'replay-progress' });
    step.replaceChildren(text, bar);
    for (let i = 0; i < 3600 && alive(page); i += 1) {
      text.textContent = `Replay ${job.id}: ${job.done} of ${job.total} replayed (${job.status}).`;
      bar.value = job.done;
      if (job.status !== 'queued' && job.status !== 'running') break;
      await sleep(1000);
      job = await api('GET', `/v1/replays/${enc(job.id)}`);
    }
    if (!alive(page)) return;
    announce(`Replay ${job.status}: ${job.done} of ${job.total} deliveries replayed.`);
    await reload();
    await after();
  }

  async function confirmReplay(body) {
    try {
      const job = await api('POST', path, { body });
      await watch(job);
    } catch (error) {
      fail(error);
    }
  }

  const dryRun = action('Count matching deliveries', async () => {
    const body = selection();
    if (!body.since) {
      fail({ message: 'since: choose when the replay starts from' });
      since.focus();
      return;
    }
    try {
      const { count } = await api('POST', path, { body: { ...body, dryRun: true } });
      if (count === 0) {
        step.replaceChildren(h('p', {}, 'No delivery matches: nothing to replay.'));
        return;
      }
      const go = action(`Replay ${count} deliveries`, () => confirmReplay(body), { class: 'danger' });
      step.replaceChildren(h('p', { id: 'replay-count' }, `${count} deliveries match (dry run). Replay them?`),
        h('div', { class: 'row' }, go,
          h('button', { type: 'button', onclick: () => { step.replaceChildren(); dryRun.focus(); } }, 'Cancel')));
      go.focus();
    } catch (error) {
      fail(error);
    }
  });

  return panel('Bulk replay', 'replay-title',
    h('div', { class: 'row' },
      field('Created since (UTC)', since),
      field('Until (UTC, optional)', until)),
    h('fieldset', {}, h('legend', {}, 'Statuses'),
      h('div', { class: 'row' }, boxes.map((b) => h('label', { class: 'check', for: b.id }, b, b.value)))),
    h('div', { class: 'row' }, field('Replay reason', reason), dryRun),
    step);
}
