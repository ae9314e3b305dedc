// Team: members with their roles, invitations (admins), leave or remove.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, errorBox, badge } from '../ui.js';
import { get, post, patch, del } from '../api.js';

const ROLES = ['viewer', 'member', 'admin', 'owner'];

export async function render(el, { app }) {
  const pid = app.project.id;
  const admin = app.can('admin');
  const acct = { project: false };
  const members = h('div', {});
  const invites = h('div', {});
  const load = async () => {
    const r = await get(`/projects/${pid}/members`, acct);
    mount(members, table([
      { label: 'Name', render: (m) => m.name || '—' },
      { label: 'E-mail', render: (m) => m.email },
      { label: 'Role', render: (m) => (admin && m.account_id !== app.account.id ? h('select', {
        'aria-label': `Role of ${m.email}`,
        onchange: async (ev) => {
          try { await patch(`/projects/${pid}/members/${m.account_id}`, { role: ev.target.value }, acct); toast('Role changed'); } catch (e) { toast(e.message, 'error'); await load(); }
        },
      }, ROLES.map((x) => h('option', { value: x, selected: x === m.role }, x))) : badge(m.role)) },
      { label: 'Joined', render: (m) => timeEl(m.joined_at || m.created_at) },
      { label: 'Actions', render: (m) => (admin || m.account_id === app.account.id ? h('button', {
        type: 'button', class: 'small danger',
        onclick: async () => {
          const self = m.account_id === app.account.id;
          if (!await confirmDialog(self ? 'Leave this project?' : `Remove ${m.email} from the project?`, self ? 'Leave' : 'Remove')) return;
          try { await del(`/projects/${pid}/members/${m.account_id}`, acct); toast(self ? 'You left the project' : 'Member removed'); if (self) { localStorage.removeItem('vp_project'); app.go('/dashboard'); } else await load(); } catch (e) { toast(e.message, 'error'); }
        },
      }, m.account_id === app.account.id ? 'Leave' : 'Remove') : '—') },
    ], r.members || [], 'No members.', 'Members'));
    if (admin) {
      try {
        const i = await get(`/projects/${pid}/invitations`, acct);
        mount(invites, table([
          { label: 'E-mail', render: (x) => x.email },
          { label: 'Role', render: (x) => x.role },
          { label: 'Expires', render: (x) => timeEl(x.expires_at) },
          { label: 'Actions', render: (x) => h('button', { type: 'button', class: 'small danger', onclick: async () => { try { await del(`/projects/${pid}/invitations/${x.id}`, acct); toast('Invitation revoked'); await load(); } catch (e) { toast(e.message, 'error'); } } }, 'Revoke') },
        ], i.invitations || [], 'No open invitation.', 'Invitations'));
      } catch (e) { mount(invites, errorBox(e)); }
    }
  };
  const invite = admin ? form({ class: 'inline', 'aria-label': 'Invite a member' }, [
    field('E-mail', h('input', { name: 'email', type: 'email', required: true })),
    field('Role', h('select', { name: 'role' }, ROLES.filter((x) => x !== 'owner' || app.can('owner')).map((x) => h('option', { value: x, selected: x === 'member' }, x)))),
    h('button', { type: 'submit', class: 'primary' }, 'Send invitation'),
  ], async (v, f) => {
    await post(`/projects/${pid}/members`, { email: v.email, role: v.role }, acct);
    f.reset();
    toast(`Invitation sent to ${v.email}`);
    await load();
  }) : null;
  mount(el, header('Team'), invite, h('h2', {}, 'Members'), members, admin ? [h('h2', {}, 'Open invitations'), invites] : null);
  await load();
}
