// The console's entry point: sign-in, the navigation, and hash routing (#/endpoints/ep_…),
// so every page has a link that works when opened directly or reloaded.

import { abilities, current, endPortalSession, resume, signIn, signOut } from './api.js';
import { field, h, route } from './dom.js';
import { alive, announce, fail, nextPage } from './ui.js';
import { deliveryPage } from './pages/delivery.js';
import { endpointPage } from './pages/endpoint.js';
import { endpointsPage, failingPage } from './pages/endpoints.js';
import { deadLetterPage, deadLettersPage, orgsPage, replaysPage } from './pages/operators.js';

const ROUTES = [
  [/^endpoints$/, (page) => endpointsPage(page, {})],
  [/^orgs\/([^/]+)\/endpoints$/, (page, org) => endpointsPage(page, { org })],
  [/^endpoints\/([^/]+)$/, (page, id) => endpointPage(page, id)],
  [/^deliveries\/([^/]+)$/, (page, id) => deliveryPage(page, id)],
  [/^failing$/, (page) => failingPage(page)],
  [/^orgs$/, (page) => orgsPage(page)],
  [/^dead-letters$/, (page) => deadLettersPage(page)],
  [/^dead-letters\/([^/]+)$/, (page, id) => deadLetterPage(page, id)],
  [/^replays$/, (page) => replaysPage(page)],
];

const main = document.getElementById('main');

function path() {
  return window.location.hash.replace(/^#\/?/, '');
}

function home(can) {
  return can.operator ? 'failing' : 'endpoints';
}

function navigation(can) {
  const items = can.operator
    ? [['failing', 'Failing endpoints'], can.orgs && ['orgs', 'Organizations'],
      ['dead-letters', 'Dead letters'], ['replays', 'Replay jobs']]
    : [['endpoints', 'Endpoints'], ['replays', 'Replay jobs']];
  const here = path().split('/')[0] || home(can);
  return items.filter(Boolean).map(([target, text]) =>
    h('a', { href: route(target), 'aria-current': here === target ? 'page' : null }, text));
}

function whoItems(session) {
  const who = session.who;
  const name = who.kind === 'operator' ? `operator · ${who.name || who.id}`
    : `${who.actingOrganizationId || who.organizationId}${session.mode === 'portal' ? ' · portal' : ` · ${who.name || who.id}`}`;
  const items = [h('span', {}, name)];
  if (session.mode === 'key') {
    items.push(h('button', { type: 'button', onclick: () => { signOut(); showSignIn(); } }, 'Sign out'));
  } else {
    items.push(h('button', { type: 'button', onclick: () => endPortalSession().then(showEnded, fail) }, 'End session'));
  }
  return items;
}

async function render() {
  const session = current();
  if (!session) {
    showSignIn();
    return;
  }
  const can = abilities(session.who);
  document.getElementById('nav').replaceChildren(...navigation(can));
  document.getElementById('who').replaceChildren(...whoItems(session));
  const page = nextPage();
  const where = path() || home(can);
  const found = ROUTES.map(([pattern, build]) => [where.match(pattern), build]).find(([m]) => m);
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let content;
  try {
    content = found
      ? await found[1](page, ...found[0].slice(1).map(decodeURIComponent))
      : h('section', {}, h('h1', { tabindex: '-1' }, 'No such page'), h('p', {}, h('a', { href: route(home(can)) }, 'Back to the start')));
  } catch (error) {
    fail(error);
    content = h('section', {}, h('h1', { tabindex: '-1' }, 'This page could not be loaded'));
  }
  if (alive(page) && content) {
    main.replaceChildren(content);
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
      document.title = `${heading.textContent} · Layers Webhooks`;
    }
  }
}

// A portal session that ended (signed out or expired): the partner opens the portal again
// from their own dashboard; there is no key to sign in with.
function showEnded(message) {
  nextPage();
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
  document.title = 'Session ended · Layers Webhooks';
  main.replaceChildren(h('section', { class: 'panel signin' },
    h('h1', { tabindex: '-1' }, 'Your session has ended'),
    h('p', {}, message || 'Open the webhooks portal again from the dashboard that showed it.')));
  main.querySelector('h1').focus();
}

function showSignIn(message) {
  nextPage();
  document.getElementById('nav').replaceChildren();
  document.getElementById('who').replaceChildren();
  document.title = 'Sign in · Layers Webhooks';
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', required: true,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'api-key-help' });
  const form = h('form', { class: 'panel signin', method: 'post', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', { id: 'api-key-help', class: 'muted' },
      'Paste an API key (whk_…). It is kept in this tab only (sessionStorage) and forgotten when you sign out or close the tab.'),
    field('API key', input),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    input.value = '';
    try {
      await signIn(key);
      announce('Signed in.');
      await render();
    } catch (error) {
      fail(error.status === 401 ? { message: 'That API key was not accepted.' } : error);
      input.focus();
    }
  });
  main.replaceChildren(form);
  if (message) fail({ message });
  input.focus();
}

window.addEventListener('hashchange', () => { render(); });
window.addEventListener('console:signed-out', (event) => {
  const { message, portal } = event.detail;
  if (portal) showEnded(`The portal session is no longer valid (${message}). Open the portal again from the dashboard that showed it.`);
  else showSignIn(`Signed out: ${message}`);
});

resume()
  .then(() => render())
  .catch((error) => { showSignIn(); fail(error); });
