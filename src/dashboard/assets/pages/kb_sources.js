// Web sources of a knowledge base: a URL (one page, or a same-site crawl)
// that Voxplane fetches, indexes and re-fetches on a schedule. Lists the
// sources with their crawl status, adds one, re-crawls now, deletes, and
// shows a source's pages with the status of each.
import { h, mount, table, timeEl, form, field, confirmDialog, toast, errorBox, badge } from '../ui.js';
import { get, post, del } from '../api.js';

const KIND = { ready: 'ok', indexed: 'ok', unchanged: 'ok', error: 'bad', blocked: 'bad', gone: 'bad' };
const BUSY = ['pending', 'crawling'];

function scope(s) {
  if (s.mode !== 'crawl') return 'this page';
  return `crawl, depth ${s.max_depth}, up to ${s.max_pages} pages${s.use_sitemap ? ', sitemap' : ''}`;
}

function counts(p) {
  const parts = [`${p.indexed + p.unchanged} of ${p.total} indexed`];
  for (const k of ['skipped', 'blocked', 'error', 'gone']) if (p[k]) parts.push(`${p[k]} ${k}`);
  return parts.join(', ');
}

/** The "Web sources" part of a knowledge base's card. */
export function section(kb, canEdit, onCleanup) {
  const box = h('div', {});
  const pagesBox = h('div', { 'aria-live': 'polite' });
  const base = `/knowledge-bases/${kb.id}/sources`;
  let timer = null;
  const showPages = async (s) => {
    try {
      const r = await get(`${base}/${s.id}/pages?per_page=50`);
      mount(pagesBox, h('h4', {}, `Pages of ${s.url}`), table([
        { label: 'Page', render: (p) => [p.title || p.url, p.title ? h('br') : null, p.title ? h('small', { class: 'muted' }, p.url) : null] },
        { label: 'Status', render: (p) => [badge(p.status, KIND[p.status]), p.http_status ? ` HTTP ${p.http_status}` : null, p.last_error ? h('span', { class: 'error' }, ` ${p.last_error}`) : null] },
        { label: 'Chunks', render: (p) => String(p.chunk_count) },
        { label: 'Fetched', render: (p) => timeEl(p.fetched_at) },
      ], r.pages || [], 'No page fetched yet.', `Pages of ${s.url}`));
    } catch (e) { mount(pagesBox, errorBox(e)); }
  };
  const act = async (fn, done) => {
    try { await fn(); toast(done); } catch (e) { toast(e.message, 'error'); }
    await load();
  };
  const load = async () => {
    clearTimeout(timer);
    try {
      const list = (await get(base)).sources || [];
      mount(box, table([
        { label: 'URL', render: (s) => s.url },
        { label: 'Scope', render: scope },
        { label: 'Status', render: (s) => [badge(s.status, KIND[s.status]), s.last_error ? h('span', { class: 'error' }, ` ${s.last_error}`) : null] },
        { label: 'Pages', render: (s) => counts(s.pages) },
        { label: 'Last crawl', render: (s) => timeEl(s.last_crawled_at) },
        { label: 'Next crawl', render: (s) => (s.refresh_hours ? timeEl(s.next_crawl_at) : 'never') },
        { label: 'Actions', render: (s) => h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'small', 'aria-label': `Pages of ${s.url}`, onclick: () => showPages(s) }, 'Pages'),
          canEdit ? [
            h('button', { type: 'button', class: 'small', 'aria-label': `Re-crawl ${s.url}`, disabled: s.status === 'crawling', onclick: () => act(() => post(`${base}/${s.id}/refresh`), `Re-crawl of ${s.url} queued`) }, 'Re-crawl'),
            h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete source ${s.url}`, onclick: async () => {
              if (!await confirmDialog(`Delete the source ${s.url} and the chunks of its pages?`, 'Delete source')) return;
              mount(pagesBox);
              act(() => del(`${base}/${s.id}`), 'Source deleted');
            } }, 'Delete')] : null) },
      ], list, 'No web source yet. Add a URL: Voxplane fetches it, indexes it and keeps it fresh.', 'Web sources'));
      // Crawls run in the background: look again while one is under way.
      if (list.some((s) => BUSY.includes(s.status))) timer = setTimeout(load, 1500);
    } catch (e) { mount(box, errorBox(e)); }
  };
  onCleanup(() => clearTimeout(timer));
  const crawlOnly = [
    field('Depth', h('input', { name: 'max_depth', type: 'number', min: 0, max: 5, value: 2, disabled: true }), 'Links followed, 0–5'),
    field('Max pages', h('input', { name: 'max_pages', type: 'number', min: 1, max: 500, value: 50, disabled: true }), '1–500 per crawl'),
    h('div', { class: 'field' }, h('label', {}, h('input', { name: 'use_sitemap', type: 'checkbox', disabled: true }), ' Use the sitemap')),
  ];
  const modeSelect = h('select', { name: 'mode', onchange: (ev) => {
    for (const i of add.querySelectorAll('[name=max_depth],[name=max_pages],[name=use_sitemap]')) i.disabled = ev.target.value !== 'crawl';
  } }, h('option', { value: 'page' }, 'This page only'), h('option', { value: 'crawl' }, 'Crawl the site from here'));
  const add = canEdit ? form({ class: 'inline', 'aria-label': 'Add a web source', novalidate: true }, [
    field('Source URL', h('input', { name: 'url', type: 'url', required: true, maxlength: 2000, placeholder: 'https://docs.example.com/' })),
    field('Mode', modeSelect),
    crawlOnly,
    field('Refresh every (hours)', h('input', { name: 'refresh_hours', type: 'number', min: 0, max: 8760, value: 24 }), '0: never'),
    h('button', { type: 'submit', class: 'primary' }, 'Add source'),
  ], async (v, f) => {
    const body = { url: (v.url || '').trim(), mode: v.mode };
    if (!body.url) throw new Error('Enter the URL of the page or site to index.');
    if (v.refresh_hours !== '') body.refresh_hours = Number(v.refresh_hours);
    if (v.mode === 'crawl') {
      if (v.max_depth !== '') body.max_depth = Number(v.max_depth);
      if (v.max_pages !== '') body.max_pages = Number(v.max_pages);
      body.use_sitemap = v.use_sitemap === 'on';
    }
    const r = await post(base, body);
    f.elements.url.value = '';
    toast(`Source ${r.source.url} added: the first crawl is queued`);
    await load();
  }) : null;
  load();
  return h('div', {}, h('h3', {}, 'Web sources'), add, box, pagesBox);
}
