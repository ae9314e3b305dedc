// Sign-in, registration and the pages the e-mailed links open.
import { h, mount, field, form, errorBox, toast } from '../ui.js';
import { post, session } from '../api.js';

const anon = { project: false, anonymous: true };

function card(main, title, ...body) {
  document.title = `${title} · Voxplane`;
  mount(main, h('div', { class: 'card narrow' },
    h('a', { class: 'brand', href: '/sign-in' }, h('img', { src: '/dashboard/assets/icon.svg', alt: '', width: 24, height: 24 }), 'Voxplane'),
    h('h1', {}, title), ...body));
}

function input(name, type = 'text', extra = {}) {
  return h('input', { name, type, required: true, ...extra });
}

function next() {
  const n = sessionStorage.getItem('vp_next');
  sessionStorage.removeItem('vp_next');
  return n && n.startsWith('/') && !n.startsWith('//') ? n : '/dashboard';
}

export async function signIn(main, { app, params }) {
  const f = form({ 'aria-label': 'Sign in' }, [
    field('E-mail', input('email', 'email', { autocomplete: 'username', value: params.get('email') || '' })),
    field('Password', input('password', 'password', { autocomplete: 'current-password' })),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  ], async (v) => {
    try {
      await session('login', { email: v.email, password: v.password });
    } catch (e) {
      if (e.status === 403) e.message = 'This address is not verified yet: follow the link we e-mailed you, or send a new one below.';
      throw e;
    }
    app.go(next());
  });
  const resend = form({ class: 'inline', 'aria-label': 'Send the verification e-mail again' }, [
    field('E-mail for a new verification link', input('email', 'email', { autocomplete: 'email' })),
    h('button', { type: 'submit' }, 'Send the link again'),
  ], async (v) => {
    const r = await post('/auth/resend-verification', { email: v.email }, anon);
    toast(r.message || 'If an account exists for this address, an e-mail is on its way');
  });
  card(main, 'Sign in', f,
    h('p', {}, h('a', { href: '/reset-password' }, 'Forgot your password?'), ' · ', h('a', { href: '/register' }, 'Create an account')),
    h('details', {}, h('summary', {}, 'Did not get the verification e-mail?'), resend));
}

export async function register(main) {
  const done = h('div', { role: 'status' });
  const f = form({ 'aria-label': 'Create an account' }, [
    field('Name', input('name', 'text', { autocomplete: 'name' })),
    field('E-mail', input('email', 'email', { autocomplete: 'email' })),
    field('Password', input('password', 'password', { autocomplete: 'new-password', minlength: 10 }), 'At least 10 characters.'),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'),
  ], async (v, el) => {
    await post('/auth/register', { name: v.name, email: v.email, password: v.password }, anon);
    el.remove();
    mount(done, h('p', { class: 'success' }, `Check your inbox: we sent a link to ${v.email} to verify the address. Follow it to finish.`));
  });
  card(main, 'Create an account', f, done, h('p', {}, 'Already have an account? ', h('a', { href: '/sign-in' }, 'Sign in')));
}

async function spendLink(main, title, path, params, okText) {
  const token = params.get('token');
  if (!token) {
    card(main, title, h('p', { class: 'error', role: 'alert' }, 'This link is incomplete: open the whole link from the e-mail.'));
    return;
  }
  card(main, title, h('p', { class: 'muted' }, 'Checking the link…'));
  try {
    await post(path, { token }, anon);
    // The token is spent: take it out of the address bar and history.
    history.replaceState({}, '', location.pathname);
    card(main, title, h('p', { class: 'success', role: 'status' }, okText), h('p', {}, h('a', { class: 'button primary', href: '/dashboard' }, 'Continue to the dashboard')));
  } catch (e) {
    card(main, title, errorBox(e), h('p', {}, 'Links work once and expire. ', h('a', { href: '/sign-in' }, 'Sign in'), ' to ask for a new one.'));
  }
}

export function verifyEmail(main, { params }) {
  return spendLink(main, 'Verify your e-mail', '/auth/verify-email', params, 'Your e-mail address is verified. You can sign in now.');
}

export function confirmEmail(main, { params }) {
  return spendLink(main, 'Confirm your new e-mail', '/auth/verify-email', params, 'Your new e-mail address is confirmed. Sign in with it from now on.');
}

export async function resetPassword(main, { params, app }) {
  const token = params.get('token');
  if (!token) {
    const done = h('div', { role: 'status' });
    const f = form({ 'aria-label': 'Reset your password' }, [
      field('E-mail', input('email', 'email', { autocomplete: 'email' })),
      h('button', { type: 'submit', class: 'primary' }, 'E-mail me a reset link'),
    ], async (v, el) => {
      await post('/auth/reset-password-request', { email: v.email }, anon);
      el.remove();
      mount(done, h('p', { class: 'success' }, 'If an account exists for this address, a reset link is on its way. It works for one hour.'));
    });
    card(main, 'Reset your password', f, done, h('p', {}, h('a', { href: '/sign-in' }, 'Back to sign in')));
    return;
  }
  const f = form({ 'aria-label': 'Choose a new password' }, [
    field('New password', input('password', 'password', { autocomplete: 'new-password', minlength: 10 }), 'At least 10 characters.'),
    h('button', { type: 'submit', class: 'primary' }, 'Set the new password'),
  ], async (v) => {
    await post('/auth/reset-password', { token, password: v.password }, anon);
    history.replaceState({}, '', '/reset-password');
    toast('Your password is changed; every session was signed out. Sign in with the new password.');
    app.go('/sign-in');
  });
  card(main, 'Choose a new password', f);
}

export async function acceptInvitation(main, { params, app }) {
  const token = params.get('token');
  if (!token) {
    card(main, 'Accept the invitation', h('p', { class: 'error', role: 'alert' }, 'This link is incomplete: open the whole link from the e-mail.'));
    return;
  }
  card(main, 'Accept the invitation',
    h('p', {}, `You are signed in as ${app.account.email}. Accepting adds you to the project that invited this address.`),
    form({ 'aria-label': 'Accept the invitation' }, [h('button', { type: 'submit', class: 'primary' }, 'Accept and join')], async () => {
      const r = await post('/invitations/accept', { token }, { project: false });
      history.replaceState({}, '', '/accept-invitation');
      const id = r && (r.project ? r.project.id : r.project_id);
      if (id) localStorage.setItem('vp_project', String(id));
      toast('You joined the project');
      app.go('/dashboard');
    }),
    h('p', {}, h('a', { href: '/dashboard' }, 'Not now')));
}
