// Agents: list, create and edit (tool definitions validated by the API,
// errors shown next to the form), delete with confirmation.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, badge, paged } from '../ui.js';
import { get, post, patch, del } from '../api.js';

const TEXT = [
  ['llm_provider', 'LLM provider', 'openai'], ['llm_model', 'LLM model', 'gpt-4o-mini'],
  ['stt_provider', 'Speech-to-text provider', 'deepgram'], ['stt_model', 'Speech-to-text model', 'nova-2'],
  ['tts_provider', 'Text-to-speech provider', 'cartesia'], ['tts_model', 'Text-to-speech model', 'sonic'],
  ['tts_voice', 'Voice', ''],
];

function editor(agent, onSaved, onCancel) {
  const a = agent || {};
  const tools = a.tools && a.tools.length ? JSON.stringify(a.tools, null, 2) : '';
  return form({ class: 'card', 'aria-label': agent ? `Edit ${a.name}` : 'Create an agent' }, [
    h('h2', {}, agent ? `Edit ${a.name}` : 'New agent'),
    h('div', { class: 'grid2' },
      field('Name', h('input', { name: 'name', required: true, maxlength: 200, value: a.name || '' })),
      field('Dispatch name', h('input', { name: 'dispatch_name', value: a.dispatch_name || '' }), 'The LiveKit agent name; left empty, a slug of the name.'),
      TEXT.map(([k, label, ph]) => field(label, h('input', { name: k, value: a[k] || '', placeholder: ph })))),
    field('Instructions', h('textarea', { name: 'instructions', rows: 4 }, a.instructions || '')),
    field('Greeting', h('input', { name: 'greeting', value: a.greeting || '' })),
    field('Tools (JSON)', h('textarea', { name: 'tools', rows: 6, class: 'mono', placeholder: '[{"name": "lookup_order", "description": "…", "parameters": {"type": "object", "properties": {}}}]' }, tools),
      'OpenAI-style function definitions; each parameters is a JSON Schema object.'),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'is_active', checked: agent ? a.is_active : true }), ' Active'),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, agent ? 'Save agent' : 'Create agent'),
      h('button', { type: 'button', onclick: onCancel }, 'Cancel')),
  ], async (v) => {
    const body = { name: v.name, is_active: v.is_active === 'on' };
    for (const k of ['dispatch_name', 'instructions', 'greeting', ...TEXT.map(([x]) => x)]) {
      if (v[k] && v[k].trim()) body[k] = v[k];
      else if (agent && k !== 'dispatch_name') body[k] = null;
    }
    if (v.tools && v.tools.trim()) {
      try { body.tools = JSON.parse(v.tools); } catch (e) {
        throw Object.assign(new Error(`Tools are not valid JSON: ${e.message}`), { details: null });
      }
    } else body.tools = [];
    const r = agent ? await patch(`/agents/${agent.id}`, body) : await post('/agents', body);
    toast(agent ? 'Agent saved' : `Agent “${r.agent ? r.agent.name : v.name}” created`);
    onSaved();
  });
}

export async function render(el, { app }) {
  const canEdit = app.can('member');
  const slot = h('div', {});
  const list = h('div', {});
  const load = async () => {
    const r = await get('/agents');
    mount(list, paged(r.agents || [], 20, (agents) => table([
      { label: 'Name', render: (a) => a.name },
      { label: 'Dispatch name', render: (a) => h('code', {}, a.dispatch_name || '') },
      { label: 'Models', render: (a) => [a.llm_model, a.stt_model, a.tts_model].filter(Boolean).join(' · ') || '—' },
      { label: 'Tools', render: (a) => String((a.tools || []).length) },
      { label: 'Status', render: (a) => badge(a.is_active ? 'active' : 'inactive', a.is_active ? 'ok' : '') },
      { label: 'Updated', render: (a) => timeEl(a.updated_at || a.created_at) },
      { label: 'Actions', render: (a) => (canEdit ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', onclick: () => open(a) }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${a.name}`, onclick: () => remove(a) }, 'Delete')) : '—') },
    ], agents, 'No agent yet. An agent is the AI that joins your rooms: create one to start.', 'Agents')));
  };
  const close = () => mount(slot);
  const open = (a) => { mount(slot, editor(a, async () => { close(); await load(); }, close)); slot.querySelector('input').focus(); };
  const remove = async (a) => {
    if (!await confirmDialog(`Delete the agent “${a.name}”?`, 'Delete agent')) return;
    try { await del(`/agents/${a.id}`); toast('Agent deleted'); await load(); } catch (e) { toast(e.message, 'error'); }
  };
  mount(el, header('Agents', canEdit ? h('button', { type: 'button', class: 'primary', onclick: () => open(null) }, 'New agent') : null), slot, list);
  await load();
}
