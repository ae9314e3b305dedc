// SIP: trunks, configurations (number → agent), editing both
// (./sip_edit.js), and dialing a number with the call's status watched live
// from /ws/monitor.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, errorBox, badge } from '../ui.js';
import { get, post, del, currentProject } from '../api.js';
import { trunkForm, configForm } from './sip_edit.js';

export async function render(el, { app, onCleanup }) {
  const canEdit = app.can('member');
  const trunksBox = h('div', {});
  const configsBox = h('div', {});
  const trunkEdit = h('div', {});
  const configEdit = h('div', {});
  const edit = (box, make) => () => {
    const close = () => mount(box);
    mount(box, make(close));
    box.querySelector('input').focus();
  };
  const calls = h('ol', { class: 'transcript', 'aria-live': 'polite', 'aria-label': 'Call status' });
  let agents = [];
  let trunks = [];
  const remove = (what, path, load) => async () => {
    if (!await confirmDialog(`Delete ${what}?`, 'Delete')) return;
    try { await del(path); toast('Deleted'); await load(); } catch (e) { toast(e.message, 'error'); }
  };
  const loadTrunks = async () => {
    trunks = (await get('/sip/trunks')).trunks || [];
    mount(trunksBox, table([
      { label: 'Name', render: (t) => t.name },
      { label: 'Number', render: (t) => t.phone_number },
      { label: 'Outbound', render: (t) => (t.outbound_trunk_id ? badge('ready', 'ok') : badge('inbound only')) },
      { label: 'Actions', render: (t) => (canEdit ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Edit trunk ${t.name}`, onclick: edit(trunkEdit, (close) => trunkForm(t, async () => { close(); await loadTrunks(); }, close)) }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete trunk ${t.name}`, onclick: remove(`the trunk ${t.name}`, `/sip/trunks/${t.id}`, loadTrunks) }, 'Delete')) : '—') },
    ], trunks, 'No SIP trunk yet. Add your provider’s trunk to call out and receive calls.', 'SIP trunks'));
  };
  const loadConfigs = async () => {
    const r = await get('/sip/configs');
    mount(configsBox, table([
      { label: 'Name', render: (c) => c.name },
      { label: 'Number', render: (c) => c.phone_number },
      { label: 'Agent', render: (c) => c.agent_name || '—' },
      { label: 'Max duration', render: (c) => `${Math.round(c.max_call_duration / 60)} min` },
      { label: 'Created', render: (c) => timeEl(c.created_at) },
      { label: 'Actions', render: (c) => (canEdit ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Edit configuration ${c.name}`, onclick: edit(configEdit, (close) => configForm(c, agents, trunks, async () => { close(); await loadConfigs(); }, close)) }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete configuration ${c.name}`, onclick: remove(`the configuration ${c.name}`, `/sip/configs/${c.id}`, loadConfigs) }, 'Delete')) : '—') },
    ], r.configs || [], 'No SIP configuration yet: one routes a number to an agent.', 'SIP configurations'));
  };
  try {
    agents = (await get('/agents')).agents || [];
    await Promise.all([loadTrunks(), loadConfigs()]);
  } catch (e) { mount(el, header('SIP'), errorBox(e)); return; }
  const agentSelect = (name) => h('select', { name }, h('option', { value: '' }, 'none'), agents.map((a) => h('option', { value: a.id }, a.name)));
  const newTrunk = canEdit ? form({ class: 'inline', 'aria-label': 'Add a trunk' }, [
    field('Trunk name', h('input', { name: 'name', required: true })),
    field('Phone number', h('input', { name: 'phone_number', required: true, placeholder: '+15551234567', inputmode: 'tel' }), 'E.164'),
    field('Provider address', h('input', { name: 'address', required: true, placeholder: 'sip.provider.com' })),
    field('Username', h('input', { name: 'auth_username', autocomplete: 'off' })),
    field('Password', h('input', { name: 'auth_password', type: 'password', autocomplete: 'new-password' })),
    h('button', { type: 'submit', class: 'primary' }, 'Add trunk'),
  ], async (v, f) => {
    const body = { name: v.name, phone_number: v.phone_number, address: v.address };
    if (v.auth_username) body.auth_username = v.auth_username;
    if (v.auth_password) body.auth_password = v.auth_password;
    await post('/sip/trunks', body);
    f.reset(); toast('Trunk added'); await loadTrunks();
  }) : null;
  const newConfig = canEdit ? form({ class: 'inline', 'aria-label': 'Add a configuration' }, [
    field('Configuration name', h('input', { name: 'name', required: true })),
    field('Number', h('input', { name: 'phone_number', required: true, inputmode: 'tel' })),
    field('Agent', agentSelect('agent_config_id')),
    h('button', { type: 'submit', class: 'primary' }, 'Add configuration'),
  ], async (v, f) => {
    const body = { name: v.name, phone_number: v.phone_number };
    if (v.agent_config_id) body.agent_config_id = Number(v.agent_config_id);
    await post('/sip/configs', body);
    f.reset(); toast('Configuration added'); await loadConfigs();
  }) : null;
  let ws = null;
  onCleanup(() => ws && ws.close());
  const watch = (room) => {
    if (!ws || ws.readyState > 1) {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/monitor?project_id=${currentProject()}`);
      ws.addEventListener('message', (ev) => {
        let m; try { m = JSON.parse(ev.data); } catch { return; }
        if (m.type === 'call.status') calls.append(h('li', {}, h('strong', {}, `${m.data.phone_number || ''} `), `${m.data.status}${m.data.reason ? ` (${m.data.reason})` : ''} · `, timeEl(m.timestamp)));
      });
    }
    const sub = () => ws.send(JSON.stringify({ action: 'subscribe', channel: `room:${room}` }));
    if (ws.readyState === 1) sub(); else ws.addEventListener('open', sub, { once: true });
  };
  const dial = canEdit ? form({ class: 'inline', 'aria-label': 'Dial a number' }, [
    field('Number to call', h('input', { name: 'phone_number', required: true, placeholder: '+15557654321', inputmode: 'tel' })),
    field('Agent', agentSelect('agent_config_id')),
    h('button', { type: 'submit', class: 'primary' }, 'Call'),
  ], async (v) => {
    const body = { phone_number: v.phone_number };
    if (v.agent_config_id) body.agent_config_id = Number(v.agent_config_id);
    const room = `call-${Date.now().toString(36)}`;
    body.room_name = room;
    watch(room);
    const r = await post('/sip/dial', body);
    calls.append(h('li', {}, `Dialing ${r.call.phone_number} from ${r.call.caller_id} in room ${r.call.room_name}`));
  }) : null;
  mount(el, header('SIP'),
    h('section', { class: 'card' }, h('h2', {}, 'Trunks'), newTrunk, trunksBox, trunkEdit),
    h('section', { class: 'card' }, h('h2', {}, 'Configurations'), newConfig, configsBox, configEdit),
    canEdit ? h('section', { class: 'card' }, h('h2', {}, 'Dial a number'), dial, h('h3', {}, 'Call status'), calls) : null);
}
