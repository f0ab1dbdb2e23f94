// Building the page. Everything from the API — URLs, descriptions, metadata, response
// excerpts, event bodies, dead-letter bytes — becomes text nodes through h(); nothing here
// (or anywhere in the console) parses markup, so partner-controlled text stays text.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  append(element, children);
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, props = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  setProps(element, props);
  append(element, children);
  return element;
}

function setProps(element, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.setAttribute('class', value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// A link inside the console (hash routing): the parts are ids, each encoded.
export function link(text, ...parts) {
  return h('a', { href: route(...parts) }, text);
}

export function route(...parts) {
  return '#/' + parts.map((part) => encodeURIComponent(part)).join('/');
}

export function table(columns, rows, { empty = 'Nothing here.', label } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.title)));
  const body = rows.map((row) =>
    h('tr', {}, columns.map((c) => h('td', { class: c.num ? 'num' : c.wrap ? 'wrap' : c.nowrap ? 'nowrap' : null, 'data-label': c.title }, h('div', {}, c.cell(row))))),
  );
  // A focusable scroll box (keyboard users can scroll a wide table at phone width).
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `${label || 'Table'} (scrolls)` },
    h('table', { class: 'stack', 'aria-label': label || null }, h('thead', {}, head), h('tbody', {}, body)));
}

// A labelled form control: the label names the control (its `for` is the control's id).
export function field(text, control) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, text), control);
}

export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([name, value]) => [h('dt', {}, name), h('dd', {}, value)]));
}

export function badge(text, tone) {
  return h('span', { class: `badge ${tone}` }, text);
}

// -- formats --------------------------------------------------------------------------------

export const DASH = '—';

export function when(iso) {
  if (!iso) return DASH;
  const text = iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
  const rel = relative(iso);
  return rel ? `${text} (${rel})` : text;
}

export function relative(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (Number.isNaN(seconds)) return '';
  const size = Math.abs(seconds);
  const [n, unit] = size < 90 ? [size, 's'] : size < 5400 ? [Math.round(size / 60), 'min']
    : size < 129600 ? [Math.round(size / 3600), 'h'] : [Math.round(size / 86400), 'd'];
  return seconds >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

export function percent(rate) {
  return rate === null || rate === undefined ? DASH : `${(rate * 100).toFixed(rate >= 0.9995 || rate === 0 ? 0 : 1)}%`;
}

export function ms(value) {
  return value === null || value === undefined ? DASH : `${Math.round(value)} ms`;
}

export function count(value) {
  return value === null || value === undefined ? DASH : String(value);
}

// datetime-local inputs are read and written as UTC (the labels say so).
export function fromLocalInput(value) {
  if (!value) return undefined;
  const full = value.length === 16 ? `${value}:00` : value;
  return new Date(`${full}Z`).toISOString().replace('.000Z', 'Z');
}

export function toLocalInput(date) {
  return date.toISOString().slice(0, 16);
}

export function statusBadge(status) {
  const tone = { succeeded: 'ok', failed: 'bad', pending: 'warn', suppressed: 'idle' }[status] || 'idle';
  return badge(status, tone);
}

// A button that runs an async action once at a time and reports its failure.
export function action(text, run, props = {}) {
  const button = h('button', { type: 'button', ...props }, text);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await run(button);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
