// Projects: the list with the caller's role, create one, rename (admins)
// and delete (owners) the current one.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, badge } from '../ui.js';
import { post, patch, del } from '../api.js';

export async function render(el, { app }) {
  const create = form({ class: 'inline', 'aria-label': 'Create a project' }, [
    field('Project name', h('input', { name: 'name', required: true, maxlength: 200, placeholder: 'Acme Support' })),
    h('button', { type: 'submit', class: 'primary' }, 'Create project'),
  ], async (v) => {
    const r = await post('/projects', { name: v.name }, { project: false });
    localStorage.setItem('vp_project', String(r.project.id));
    toast(`Project “${r.project.name}” created`);
    app.go('/dashboard');
  });
  const p = app.project;
  const settings = p ? h('section', { class: 'card', 'aria-labelledby': 'settings-h' },
    h('h2', { id: 'settings-h' }, `Settings of ${p.name}`),
    h('p', {}, 'Plan: ', badge(p.plan), ' · Room prefix: ', h('code', {}, p.room_prefix), ' · Your role: ', badge(p.role)),
    app.can('admin') ? form({ class: 'inline', 'aria-label': 'Rename the project' }, [
      field('Name', h('input', { name: 'name', required: true, maxlength: 200, value: p.name })),
      h('button', { type: 'submit' }, 'Rename'),
    ], async (v) => {
      await patch(`/projects/${p.id}`, { name: v.name }, { project: false });
      toast('Renamed');
      await app.reloadProjects();
      app.go('/dashboard/projects');
    }) : null,
    app.can('owner') ? h('button', {
      type: 'button', class: 'danger', onclick: async () => {
        if (!await confirmDialog(`Delete the project “${p.name}”? Its keys stop working at once.`, 'Delete project')) return;
        try {
          await del(`/projects/${p.id}`, { project: false });
          localStorage.removeItem('vp_project');
          toast('Project deleted');
          app.go('/dashboard/projects');
        } catch (e) { toast(e.message, 'error'); }
      },
    }, 'Delete project') : null) : null;
  mount(el,
    header(app.projects.length ? 'Projects' : 'Create your first project'),
    app.projects.length ? null : h('p', {}, 'A project holds your agents, rooms, sessions and keys. Create one to start.'),
    create,
    table([
      { label: 'Name', render: (x) => x.name },
      { label: 'Plan', render: (x) => x.plan },
      { label: 'Your role', render: (x) => x.role },
      { label: 'Created', render: (x) => timeEl(x.created_at) },
    ], app.projects, 'You are not a member of any project yet.', 'Projects'),
    settings);
}
