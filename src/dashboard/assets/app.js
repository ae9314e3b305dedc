// The dashboard application: a router over history.pushState, the shell
// (navigation, project switcher, account menu) and the signed-in state.
import { h, mount, toast, errorBox } from './ui.js';
import { get, setProject, whenSignedOut, session, post } from './api.js';
import * as auth from './pages/auth.js';
import * as account from './pages/account.js';
import * as projects from './pages/projects.js';
import * as overview from './pages/overview.js';
import * as keys from './pages/keys.js';
import * as agents from './pages/agents.js';
import * as team from './pages/team.js';
import * as live from './pages/live.js';
import * as sessions from './pages/sessions.js';
import * as webhooks from './pages/webhooks.js';
import * as knowledge from './pages/knowledge.js';
import * as sip from './pages/sip.js';
import * as chat from './pages/chat.js';

const ROLE_RANK = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** What every page gets: the account, the project and helpers. */
export const app = {
  account: null,
  projects: [],
  project: null,
  /** Whether the signed-in member has at least this role in the project. */
  can(role) { return !!this.project && ROLE_RANK[this.project.role] >= ROLE_RANK[role]; },
  go(path) { navigate(path); },
  async reloadProjects() { await loadProjects(); },
  async signOut(everywhere = false) {
    try { await post(everywhere ? '/auth/logout-all' : '/auth/logout', undefined, { project: false }); } catch { /* the session may be gone already */ }
    try { await session('logout'); } catch { /* cookies expire anyway */ }
    this.account = null;
    toast(everywhere ? 'Signed out on every device' : 'Signed out');
    navigate('/sign-in');
  },
};

// Public pages (no session needed); the e-mailed links open these.
const PUBLIC = {
  '/sign-in': auth.signIn,
  '/register': auth.register,
  '/verify-email': auth.verifyEmail,
  '/confirm-email': auth.confirmEmail,
  '/reset-password': auth.resetPassword,
};

// Pages of a signed-in account: [path, nav label, render, needs a project].
const PAGES = [
  ['/dashboard', 'Overview', overview.render, true],
  ['/dashboard/live', 'Live', live.render, true],
  ['/dashboard/sessions', 'Sessions', sessions.render, true],
  ['/dashboard/agents', 'Agents', agents.render, true],
  ['/dashboard/keys', 'API keys', keys.render, true],
  ['/dashboard/knowledge', 'Knowledge bases', knowledge.render, true],
  ['/dashboard/webhooks', 'Webhooks', webhooks.render, true],
  ['/dashboard/sip', 'SIP', sip.render, true],
  ['/dashboard/chat', 'Chat', chat.render, true],
  ['/dashboard/team', 'Team', team.render, true],
  ['/dashboard/projects', 'Projects', projects.render, false],
  ['/dashboard/account', 'Account', account.render, false],
];

let cleanup = [];
let routing = 0;

function navigate(path, replace = false) {
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  route();
}

async function loadAccount() {
  try {
    const r = await get('/auth/me', { project: false, quiet: true });
    app.account = r.account;
  } catch (e) {
    if (e.status === 401) app.account = null;
    else throw e;
  }
}

async function loadProjects() {
  const r = await get('/projects', { project: false });
  app.projects = r.projects || [];
  const saved = Number(localStorage.getItem('vp_project'));
  app.project = app.projects.find((p) => p.id === saved) || app.projects[0] || null;
  setProject(app.project ? app.project.id : null);
}

function chooseProject(id) {
  app.project = app.projects.find((p) => p.id === Number(id)) || null;
  setProject(app.project ? app.project.id : null);
  if (app.project) localStorage.setItem('vp_project', String(app.project.id));
  route();
}

function shell(current, content) {
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('ul', {}, PAGES.map(([path, label]) => h('li', {},
      h('a', { href: path, 'aria-current': path === current ? 'page' : null }, label)))));
  const switcher = app.projects.length ? h('label', { class: 'switcher' },
    h('span', { class: 'sr-only' }, 'Project'),
    h('select', { 'aria-label': 'Project', onchange: (ev) => chooseProject(ev.target.value) },
      app.projects.map((p) => h('option', { value: p.id, selected: app.project && p.id === app.project.id }, `${p.name} (${p.role})`)))) : null;
  const menuToggle = h('button', { type: 'button', class: 'menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'side' }, 'Menu');
  const side = h('div', { id: 'side', class: 'side' }, nav);
  menuToggle.addEventListener('click', () => {
    const open = side.classList.toggle('open');
    menuToggle.setAttribute('aria-expanded', String(open));
  });
  return h('div', { class: 'layout' },
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '/dashboard' }, h('img', { src: '/dashboard/assets/icon.svg', alt: '', width: 24, height: 24 }), 'Voxplane'),
      menuToggle,
      switcher,
      h('span', { class: 'who' }, app.account ? app.account.email : ''),
      h('button', { type: 'button', class: 'link', onclick: () => app.signOut() }, 'Sign out')),
    side,
    h('main', { id: 'main', tabindex: '-1' }, content));
}

async function route() {
  for (const fn of cleanup.splice(0)) { try { fn(); } catch { /* ignore */ } }
  const seq = ++routing;
  const stale = () => seq !== routing;
  const root = document.getElementById('app');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const params = new URLSearchParams(location.search);
  const ctx = { app, params, root, onCleanup: (fn) => { cleanup.push(fn); } };
  try {
    if (PUBLIC[path]) {
      const main = h('main', { id: 'main', class: 'public', tabindex: '-1' });
      mount(root, main);
      await PUBLIC[path](main, ctx);
      return focusMain(main);
    }
    await loadAccount();
    if (stale()) return;
    if (!app.account) {
      sessionStorage.setItem('vp_next', location.pathname + location.search);
      return navigate('/sign-in', true);
    }
    if (path === '/accept-invitation') {
      const main = h('main', { id: 'main', class: 'public', tabindex: '-1' });
      mount(root, main);
      await auth.acceptInvitation(main, ctx);
      return focusMain(main);
    }
    await loadProjects();
    if (stale()) return;
    const page = PAGES.find(([p]) => p === path);
    const content = h('div', {});
    mount(root, shell(page ? page[0] : '', content));
    if (!page) {
      mount(content, h('h1', {}, 'Page not found'), h('p', {}, 'There is no such page. ', h('a', { href: '/dashboard' }, 'Go to the overview')));
    } else if (page[3] && !app.project) {
      document.title = 'Create a project · Voxplane';
      await projects.render(content, ctx);
    } else {
      document.title = `${page[1]} · Voxplane`;
      await page[2](content, ctx);
    }
    focusMain(document.getElementById('main'));
  } catch (e) {
    mount(root, h('main', { id: 'main', class: 'public' }, h('h1', {}, 'The dashboard could not load'), errorBox(e),
      h('button', { type: 'button', onclick: () => route() }, 'Try again')));
  }
}

function focusMain(main) {
  // Moves focus to the new page for keyboard and screen-reader users,
  // unless a field of the page already has it.
  if (main && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/docs')) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', route);
whenSignedOut(() => {
  if (!PUBLIC[location.pathname]) {
    sessionStorage.setItem('vp_next', location.pathname + location.search);
    navigate('/sign-in', true);
  }
});
route();
