// Webhooks: endpoints (create with the secret shown once, enable/disable,
// delete), rotate the secret, send a test event, and each endpoint's
// delivery log with every attempt's response; redeliver a delivery.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, errorBox, badge, copy } from '../ui.js';
import { get, post, patch, del } from '../api.js';

function secretBox(title, secret) {
  return h('div', { class: 'card notice', role: 'status' }, h('h2', {}, title),
    h('p', {}, 'Copy it now: it is shown only this once. Receivers check the webhook-signature header with it.'),
    h('div', { class: 'copy-row' }, h('code', { 'data-testid': 'webhook-secret' }, secret), h('button', { type: 'button', onclick: () => copy(secret) }, 'Copy')));
}

const STATUS_KIND = { delivered: 'ok', failed: 'bad', pending: '' };

async function deliveries(box, hook, canEdit, page = 1, status = '') {
  const q = new URLSearchParams({ page: String(page), per_page: '20' });
  if (status) q.set('status', status);
  let r;
  try { r = await get(`/webhooks/${hook.id}/deliveries?${q}`); } catch (e) { mount(box, errorBox(e)); return; }
  const detail = h('div', {});
  const reload = () => deliveries(box, hook, canEdit, page, status);
  const show = async (d) => {
    try {
      const x = await get(`/webhooks/${hook.id}/deliveries/${d.id}`);
      mount(detail, h('section', { class: 'card', 'aria-label': `Delivery ${d.id}` },
        h('h3', {}, `Delivery ${d.id}: ${d.event_type}`),
        h('p', {}, 'Event id ', h('code', {}, x.delivery.event_id), ' · status ', badge(x.delivery.status, STATUS_KIND[x.delivery.status])),
        table([
          { label: 'Attempt', render: (a) => String(a.attempt) },
          { label: 'Response', render: (a) => (a.status_code ? `HTTP ${a.status_code}` : 'no response') },
          { label: 'Body or error', render: (a) => h('code', {}, a.error || a.response_body || '') },
          { label: 'Latency', render: (a) => `${a.latency_ms} ms` },
          { label: 'At', render: (a) => timeEl(a.created_at) },
        ], x.attempts || [], 'No attempt yet.', 'Attempts')));
    } catch (e) { mount(detail, errorBox(e)); }
  };
  mount(box,
    h('div', { class: 'actions' },
      h('label', {}, 'Show ', h('select', { 'aria-label': 'Delivery status', onchange: (ev) => deliveries(box, hook, canEdit, 1, ev.target.value) },
        ['', 'pending', 'delivered', 'failed'].map((s) => h('option', { value: s, selected: s === status }, s || 'all')))),
      h('button', { type: 'button', onclick: reload }, 'Refresh log')),
    table([
      { label: 'Event', render: (d) => d.event_type },
      { label: 'Status', render: (d) => badge(d.status, STATUS_KIND[d.status]) },
      { label: 'Attempts', render: (d) => String(d.attempts) },
      { label: 'Last response', render: (d) => (d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || '—') },
      { label: 'Created', render: (d) => timeEl(d.created_at) },
      { label: 'Actions', render: (d) => h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: () => show(d) }, 'Attempts'),
        canEdit && d.status !== 'pending' ? h('button', {
          type: 'button', class: 'small', 'aria-label': `Redeliver ${d.id}`,
          onclick: async () => {
            try { await post(`/webhooks/${hook.id}/deliveries/${d.id}/redeliver`); toast('Delivery queued again'); await reload(); } catch (e) { toast(e.message, 'error'); }
          },
        }, 'Redeliver') : null) },
    ], r.deliveries || [], 'No delivery yet. Send a test event to see one.', `Deliveries of ${hook.url}`),
    r.total_pages > 1 ? h('nav', { class: 'pager', 'aria-label': 'Delivery pages' },
      h('button', { type: 'button', disabled: r.page <= 1, onclick: () => deliveries(box, hook, canEdit, r.page - 1, status) }, 'Previous'),
      h('span', {}, `Page ${r.page} of ${r.total_pages}`),
      h('button', { type: 'button', disabled: r.page >= r.total_pages, onclick: () => deliveries(box, hook, canEdit, r.page + 1, status) }, 'Next')) : null,
    detail);
}

export async function render(el, { app }) {
  const canEdit = app.can('member');
  const shown = h('div', { 'aria-live': 'polite' });
  const list = h('div', {});
  const log = h('div', {});
  const load = async () => {
    const r = await get('/webhooks');
    mount(list, table([
      { label: 'URL', render: (w) => h('code', {}, w.url) },
      { label: 'Events', render: (w) => (w.event_types || []).join(', ') || 'all' },
      { label: 'Status', render: (w) => badge(w.is_active ? 'active' : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ''}`, w.is_active ? 'ok' : 'bad') },
      { label: 'Created', render: (w) => timeEl(w.created_at) },
      { label: 'Actions', render: (w) => h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: () => { mount(log, h('h2', {}, `Delivery log of ${w.url}`)); const b = h('div', {}); log.append(b); deliveries(b, w, canEdit); } }, 'Delivery log'),
        canEdit ? [
          h('button', { type: 'button', class: 'small', onclick: async () => { try { await patch(`/webhooks/${w.id}`, { is_active: !w.is_active }); toast(w.is_active ? 'Endpoint disabled' : 'Endpoint enabled'); await load(); } catch (e) { toast(e.message, 'error'); } } }, w.is_active ? 'Disable' : 'Enable'),
          h('button', { type: 'button', class: 'small', onclick: async () => {
            if (!await confirmDialog('Rotate the signing secret? The old one keeps working for a while so receivers can switch.', 'Rotate secret', false)) return;
            try { const x = await post(`/webhooks/${w.id}/rotate-secret`); mount(shown, secretBox('The new signing secret', x.secret)); } catch (e) { toast(e.message, 'error'); }
          } }, 'Rotate secret'),
          h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${w.url}`, onclick: async () => {
            if (!await confirmDialog(`Delete the endpoint ${w.url}?`, 'Delete endpoint')) return;
            try { await del(`/webhooks/${w.id}`); toast('Endpoint deleted'); mount(log); await load(); } catch (e) { toast(e.message, 'error'); }
          } }, 'Delete')] : null) },
    ], r.webhooks || [], 'No webhook endpoint yet. Add one to receive signed events (room.started, session.ended, …).', 'Webhook endpoints'));
  };
  const create = canEdit ? form({ class: 'inline', 'aria-label': 'Add an endpoint' }, [
    field('Endpoint URL', h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/voxplane' })),
    field('Description', h('input', { name: 'description' })),
    h('button', { type: 'submit', class: 'primary' }, 'Add endpoint'),
  ], async (v, f) => {
    const body = { url: v.url };
    if (v.description) body.description = v.description;
    const r = await post('/webhooks', body);
    f.reset();
    mount(shown, secretBox('Your endpoint’s signing secret', r.webhook.secret));
    await load();
  }) : null;
  const sendTest = canEdit ? h('button', { type: 'button', onclick: async () => {
    try { const r = await post('/webhooks/test', {}); toast(`Test event sent to ${r.enqueued} endpoint(s)`); } catch (e) { toast(e.message, 'error'); }
  } }, 'Send a test event') : null;
  mount(el, header('Webhooks', sendTest), create, shown, list, log);
  try { await load(); } catch (e) { mount(list, errorBox(e)); }
}
