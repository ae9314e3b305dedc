// Webhooks: endpoints and their delivery log.
import { h, mount, header, table, timeEl, errorBox, badge } from '../ui.js';
import { get } from '../api.js';

export async function render(el) {
  mount(el, header('Webhooks'), h('p', { class: 'muted' }, 'Loading…'));
  try {
    const r = await get('/webhooks');
    const hooks = r.webhooks || r.endpoints || [];
    mount(el, header('Webhooks'), table([
      { label: 'URL', render: (w) => h('code', {}, w.url) },
      { label: 'Events', render: (w) => (w.events || []).join(', ') || 'all' },
      { label: 'Status', render: (w) => badge(w.is_active === false ? 'disabled' : 'active') },
      { label: 'Created', render: (w) => timeEl(w.created_at) },
    ], hooks, 'No webhook endpoint yet.', 'Webhook endpoints'));
  } catch (e) { mount(el, header('Webhooks'), errorBox(e)); }
}
