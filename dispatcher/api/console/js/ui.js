// What every page shares: the polite status line, the error line, and whether the page that
// started some work (a poll, say) is still the one on screen.

let generation = 0;

export function nextPage() {
  generation += 1;
  clear();
  return generation;
}

// A page's work stops once the user has moved on.
export function alive(page) {
  return page === generation;
}

export function announce(message) {
  document.getElementById('status').textContent = message;
}

export function fail(error) {
  const text = error && error.message ? error.message : String(error);
  const code = error && error.code && error.code !== 'HTTP' ? `${error.code}: ` : '';
  document.getElementById('alert').textContent = code + text;
}

export function clear() {
  document.getElementById('status').textContent = '';
  document.getElementById('alert').textContent = '';
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
