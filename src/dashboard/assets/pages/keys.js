// API keys: the masked list, create (the key shown once, with a copy
// button) and revoke with a confirmation. Admins only; others see the list.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, copy, errorBox, paged } from '../ui.js';
import { get, post, del } from '../api.js';

export async function render(el, ctx) {
  const { app } = ctx;
  const pid = app.project.id;
  const admin = app.can('admin');
  const shown = h('div', { 'aria-live': 'polite' });
  const list = h('div', {});
  const load = async () => {
    if (!admin) {
      mount(list, h('p', { class: 'empty' }, 'Only admins and owners of the project see and manage its API keys.'));
      return;
    }
    try {
      const r = await get(`/projects/${pid}/keys`, { project: false });
      mount(list, paged(r.keys || [], 20, (keys) => table([
        { label: 'Name', render: (k) => k.name },
        { label: 'Key', render: (k) => h('code', {}, k.masked_key) },
        { label: 'Created', render: (k) => timeEl(k.created_at) },
        { label: 'Last used', render: (k) => timeEl(k.last_used_at) },
        { label: 'Expires', render: (k) => (k.expires_at ? timeEl(k.expires_at) : 'never') },
        { label: 'Actions', render: (k) => h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke ${k.name}`, onclick: () => revoke(k) }, 'Revoke') },
      ], keys, 'No API key yet. Create one to call the API from your servers.', 'API keys')));
    } catch (e) { mount(list, errorBox(e)); }
  };
  const revoke = async (k) => {
    if (!await confirmDialog(`Revoke the key “${k.name}”? Every request with it fails from now on.`, 'Revoke key')) return;
    try {
      await del(`/projects/${pid}/keys/${k.id}`, { project: false });
      toast(`Key “${k.name}” revoked`);
      mount(shown);
      await load();
    } catch (e) { toast(e.message, 'error'); }
  };
  const create = admin ? form({ class: 'inline', 'aria-label': 'Create an API key' }, [
    field('Name', h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'Production server' })),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'),
  ], async (v, f) => {
    const r = await post(`/projects/${pid}/keys`, { name: v.name }, { project: false });
    f.reset();
    const key = r.key.key;
    mount(shown, h('div', { class: 'card notice', role: 'status' },
      h('h2', {}, 'Your new key'),
      h('p', {}, 'Copy it now: it is shown only this once.'),
      h('div', { class: 'copy-row' }, h('code', { 'data-testid': 'new-key' }, key),
        h('button', { type: 'button', onclick: () => copy(key) }, 'Copy'))));
    await load();
  }) : null;
  const tokenOut = h('div', { 'aria-live': 'polite' });
  const testToken = app.can('member') ? form({ class: 'inline', 'aria-label': 'Generate a test token' }, [
    field('Room', h('input', { name: 'room', required: true, placeholder: 'test-room' })),
    field('Identity', h('input', { name: 'identity', required: true, placeholder: 'tester' })),
    h('button', { type: 'submit' }, 'Generate test token'),
  ], async (v) => {
    const r = await post(`/projects/${pid}/test-token`, { room: v.room, identity: v.identity }, { project: false });
    mount(tokenOut, h('div', { class: 'card notice' },
      h('p', {}, `A LiveKit token for ${r.identity} in ${r.room} (server ${r.ws_url}):`),
      h('div', { class: 'copy-row' }, h('code', { 'data-testid': 'test-token' }, r.token), h('button', { type: 'button', onclick: () => copy(r.token) }, 'Copy token'))));
  }) : null;
  mount(el, header('API keys'), h('p', { class: 'muted' }, 'Keys let your servers call Voxplane as this project (with full rights). Keep them secret.'),
    create, shown, list,
    testToken ? h('section', { class: 'card', 'aria-labelledby': 'tt-h' }, h('h2', { id: 'tt-h' }, 'Test token'),
      h('p', { class: 'muted' }, 'A short-lived LiveKit token to try a room from a client, without writing code.'), testToken, tokenOut) : null);
  await load();
}
