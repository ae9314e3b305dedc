// The signed-in account: name, e-mail change, password, sign out everywhere.
import { h, mount, field, form, header, toast } from '../ui.js';
import { patch, post } from '../api.js';

export async function render(el, { app }) {
  const a = app.account;
  const profile = form({ 'aria-label': 'Profile' }, [
    field('Name', h('input', { name: 'name', required: true, value: a.name, autocomplete: 'name' })),
    field('E-mail', h('input', { name: 'email', type: 'email', required: true, value: a.email, autocomplete: 'email' }),
      a.pending_email ? `Waiting for confirmation: ${a.pending_email}` : 'A new address is confirmed through a link we e-mail to it.'),
    h('button', { type: 'submit', class: 'primary' }, 'Save'),
  ], async (v) => {
    const body = {};
    if (v.name !== a.name) body.name = v.name;
    if (v.email.trim().toLowerCase() !== a.email) body.email = v.email;
    if (!Object.keys(body).length) return toast('Nothing changed');
    const r = await patch('/auth/me', body, { project: false });
    app.account = r.account;
    toast(body.email ? `Saved. Confirm the new address through the link sent to ${body.email}.` : 'Saved');
  });
  const password = form({ 'aria-label': 'Change password' }, [
    field('Current password', h('input', { name: 'current_password', type: 'password', required: true, autocomplete: 'current-password' })),
    field('New password', h('input', { name: 'new_password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' }), 'At least 10 characters. Your other sessions are signed out.'),
    h('button', { type: 'submit', class: 'primary' }, 'Change password'),
  ], async (v, f) => {
    await post('/auth/change-password', v, { project: false });
    f.reset();
    toast('Password changed; your other sessions were signed out');
  });
  mount(el,
    header('Account'),
    h('section', { class: 'card' }, h('h2', {}, 'Profile'), profile),
    h('section', { class: 'card' }, h('h2', {}, 'Password'), password),
    h('section', { class: 'card' }, h('h2', {}, 'Sessions'),
      h('p', {}, 'Sign out of this browser, or of every browser and device where you are signed in.'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => app.signOut(false) }, 'Sign out'),
        h('button', { type: 'button', class: 'danger', onclick: () => app.signOut(true) }, 'Sign out everywhere'))));
}
