/**
 * The status page itself: one HTML document with its style and script inline (no framework, no
 * build step). The script fetches `status.json` next to the page, renders every certificate on
 * its own timeline (not-before, planned renewal, not-after, now) with its state and last error,
 * and refreshes on the `events` stream (server-sent events), polling as a fallback. Everything
 * from the server is put in the page as text (textContent), never as markup. The Content-Security-
 * Policy allows exactly this style and this script (their hashes).
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #b35900; --bad: #c62828; --muted: #6b7280;
  --bar: #d0d7de; --life: #8fb8ef; --card: rgba(127,127,127,.08); font-family: system-ui, sans-serif; }
body { margin: 0 auto; padding: 1rem; max-width: 60rem; line-height: 1.4; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; justify-content: space-between; }
h1 { font-size: 1.3rem; margin: 0; }
.summary { color: var(--muted); font-size: .9rem; }
ol { list-style: none; padding: 0; margin: 1rem 0; display: grid; gap: .75rem; }
li { background: var(--card); border-radius: .5rem; padding: .75rem; overflow-wrap: anywhere; }
.top { display: flex; flex-wrap: wrap; gap: .25rem .75rem; align-items: baseline; }
.id { font-weight: 600; }
.names, .meta { color: var(--muted); font-size: .85rem; }
.state { font-size: .75rem; font-weight: 600; text-transform: uppercase; padding: .1rem .45rem; border-radius: 1rem; color: #fff; background: var(--ok); }
.state.warn { background: var(--warn); } .state.bad { background: var(--bad); }
.timeline { position: relative; height: .9rem; margin: .9rem 0 .3rem; background: var(--bar); border-radius: .45rem; }
.life { position: absolute; top: 0; bottom: 0; background: var(--life); border-radius: .45rem; }
.mark { position: absolute; top: -.3rem; bottom: -.3rem; width: 3px; margin-left: -1.5px; }
.mark.now { background: currentColor; } .mark.renewal { background: var(--warn); }
.dates { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .1rem 1rem; font-size: .8rem; color: var(--muted); }
.error { margin-top: .4rem; font-size: .85rem; color: var(--bad); }
.more, .offline, .legend { color: var(--muted); font-size: .85rem; }
.legend i { display: inline-block; width: 3px; height: .8rem; margin: 0 .3rem 0 .6rem; vertical-align: middle; }
.legend .now { background: currentColor; } .legend .renewal { background: var(--warn); } .legend .life { position: static; width: 1.2rem; background: var(--life); }
`;

const SCRIPT = `
'use strict';
const base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
let data = null, fetchedAt = 0, timer = null;
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const now = () => data ? Date.parse(data.now) + (Date.now() - fetchedAt) : Date.now();
function span(ms) {
  const a = Math.abs(ms), s = ms < 0 ? ' ago' : '', p = ms < 0 ? '' : 'in ';
  const u = a >= 864e5 ? [a / 864e5, 'd'] : a >= 36e5 ? [a / 36e5, 'h'] : a >= 6e4 ? [a / 6e4, 'min'] : [a / 1e3, 's'];
  return p + (u[0] >= 10 ? Math.round(u[0]) : Math.round(u[0] * 10) / 10) + ' ' + u[1] + s;
}
const when = (iso) => iso ? new Date(iso).toLocaleString() + ' (' + span(Date.parse(iso) - now()) + ')' : '—';
const STATES = { null: ['ready', ''], expiring: ['expiring', 'warn'], unverified: ['unverified', 'warn'],
  'not-yet-valid': ['not yet valid', 'warn'], expired: ['expired', 'bad'], missing: ['missing', 'bad'] };
function pct(t, from, to) { return Math.max(0, Math.min(100, ((t - from) / (to - from)) * 100)); }
function card(c) {
  const li = el('li'); li.dataset.id = c.id; li.dataset.serial = c.serial || '';
  const top = el('div', 'top');
  top.append(el('span', 'id', c.id));
  const [label, cls] = STATES[c.reason] || [c.reason, 'warn'];
  const badge = el('span', 'state ' + cls, c.renewing ? label + ' · renewing' : label); badge.dataset.state = c.reason || 'ready';
  top.append(badge, el('span', 'names', c.names.join(', ')));
  li.append(top);
  li.append(el('div', 'meta', [c.issuer || 'no issuer yet', c.serial ? 'serial ' + c.serial : 'no certificate', c.purpose].join(' · ')));
  if (c.notBefore && c.notAfter) {
    const from = Date.parse(c.notBefore), to = Date.parse(c.notAfter), t = now();
    const lo = Math.min(from, t), hi = Math.max(to, t, c.nextRenewalAt ? Date.parse(c.nextRenewalAt) : to);
    const bar = el('div', 'timeline'); bar.setAttribute('role', 'img');
    bar.setAttribute('aria-label', 'valid from ' + c.notBefore + ' to ' + c.notAfter + (c.nextRenewalAt ? ', renewal ' + c.nextRenewalAt : ''));
    const life = el('div', 'life'); life.style.left = pct(from, lo, hi) + '%'; life.style.width = (pct(to, lo, hi) - pct(from, lo, hi)) + '%';
    bar.append(life);
    if (c.nextRenewalAt) { const r = el('div', 'mark renewal'); r.title = 'planned renewal'; r.style.left = pct(Date.parse(c.nextRenewalAt), lo, hi) + '%'; bar.append(r); }
    const n = el('div', 'mark now'); n.title = 'now'; n.style.left = pct(t, lo, hi) + '%'; bar.append(n);
    li.append(bar);
  }
  const dates = el('div', 'dates');
  dates.append(el('span', '', 'not before: ' + when(c.notBefore)), el('span', 'renewal', (c.serial ? 'renewal: ' : 'next attempt: ') + when(c.nextRenewalAt)),
    el('span', '', 'not after: ' + when(c.notAfter)));
  li.append(dates);
  if (c.lastError) {
    const e = el('div', 'error'); e.textContent = 'last error (' + c.failures + ' in a row): ' + c.lastError.code + ': ' + c.lastError.message;
    li.append(e);
  }
  return li;
}
function render() {
  if (!data) return;
  const list = document.getElementById('certificates');
  list.replaceChildren(...data.certificates.map(card));
  const notReady = data.certificates.filter((c) => !c.ready).length;
  document.getElementById('summary').textContent = data.total + ' certificates · ' + (notReady ? notReady + ' not ready' : 'all ready') + ' · updated ' + new Date(now()).toLocaleTimeString();
  document.getElementById('more').textContent = data.total > data.shown ? (data.total - data.shown) + ' more not shown (the most urgent are listed)' : '';
  document.body.dataset.ready = String(data.ready);
}
async function refresh() {
  try {
    const r = await fetch(base + 'status.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(String(r.status));
    data = await r.json(); fetchedAt = Date.now();
    document.getElementById('offline').textContent = '';
    render();
  } catch (e) { document.getElementById('offline').textContent = 'cannot reach the server; retrying'; }
}
function schedule() { clearTimeout(timer); timer = setTimeout(() => { refresh().finally(schedule); }, Number(document.body.dataset.refresh) || 30000); }
let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 50); }
if (window.EventSource) { const es = new EventSource(base + 'events'); es.addEventListener('change', soon); }
refresh().finally(schedule);
setInterval(render, 15000);
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Allows the inline style and script above, and requests to the page's own origin; nothing else. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page, with its title and refresh interval (the only values put into markup, escaped). */
export function pageHtml(title: string, refreshMs: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body data-refresh="${Math.round(refreshMs)}">
<header><h1>${escapeHtml(title)}</h1><span class="summary" id="summary">loading…</span></header>
<p class="legend"><i class="life"></i>valid <i class="renewal"></i>planned renewal <i class="now"></i>now</p>
<p class="offline" id="offline"></p>
<ol id="certificates" aria-label="certificates"></ol>
<p class="more" id="more"></p>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
