// SIP: the edit forms of a trunk and of a configuration. Only the fields
// that changed are sent (PATCH); the API's validation errors are shown in
// words next to the form, and the field it names is marked.
import { h, form, field, toast } from '../ui.js';
import { patch } from '../api.js';

const cancelButton = (onCancel) => h('button', { type: 'button', onclick: onCancel }, 'Cancel');

/** The edit form of a trunk; onSaved() after a successful save. */
export function trunkForm(t, onSaved, onCancel) {
  return h('section', { class: 'card', 'aria-labelledby': 'trunk-edit-h' },
    h('h3', { id: 'trunk-edit-h' }, `Edit trunk ${t.name}`),
    form({ class: 'inline', 'aria-label': `Edit trunk ${t.name}`, novalidate: true }, [
      field('Trunk name', h('input', { name: 'name', value: t.name, maxlength: 100 })),
      field('Phone number', h('input', { name: 'phone_number', value: t.phone_number, inputmode: 'tel' }), 'E.164, e.g. +15551234567'),
      field('Provider address', h('input', { name: 'address', placeholder: 'unchanged' }), 'Empty: keep the current one'),
      field('Username', h('input', { name: 'auth_username', autocomplete: 'off', placeholder: 'unchanged' })),
      field('Password', h('input', { name: 'auth_password', type: 'password', autocomplete: 'new-password' }), 'Needed to change a trunk that authenticates'),
      h('button', { type: 'submit', class: 'primary' }, 'Save trunk'),
      cancelButton(onCancel),
    ], async (v) => {
      const body = {};
      if (v.name !== t.name) body.name = v.name;
      if (v.phone_number !== t.phone_number) body.phone_number = v.phone_number.trim();
      for (const k of ['address', 'auth_username', 'auth_password']) if (v[k]) body[k] = v[k];
      if (!Object.keys(body).length) throw new Error('Nothing changed: edit a field first, or cancel.');
      await patch(`/sip/trunks/${t.id}`, body);
      toast(`Trunk ${body.name || t.name} saved`);
      await onSaved();
    }));
}

/** The edit form of a configuration. */
export function configForm(c, agents, trunks, onSaved, onCancel) {
  const select = (name, items, current, none) => h('select', { name },
    h('option', { value: '' }, none),
    items.map((x) => h('option', { value: x.id, selected: x.id === current }, x.name)));
  return h('section', { class: 'card', 'aria-labelledby': 'config-edit-h' },
    h('h3', { id: 'config-edit-h' }, `Edit configuration ${c.name}`),
    form({ class: 'inline', 'aria-label': `Edit configuration ${c.name}`, novalidate: true }, [
      field('Configuration name', h('input', { name: 'name', value: c.name, maxlength: 100 })),
      field('Number', h('input', { name: 'phone_number', value: c.phone_number, inputmode: 'tel' }), 'E.164'),
      field('Agent', select('agent_config_id', agents, c.agent_config_id, c.agent_config_id ? 'unchanged' : 'none')),
      field('Trunk', select('trunk_id', trunks, c.trunk_id, c.trunk_id ? 'unchanged' : 'none')),
      field('Max call duration (seconds)', h('input', { name: 'max_call_duration', type: 'number', min: 1, max: 86400, value: c.max_call_duration })),
      h('div', { class: 'field' }, h('label', {}, h('input', { name: 'dtmf_enabled', type: 'checkbox', checked: c.dtmf_enabled }), ' Keypad tones (DTMF)')),
      h('button', { type: 'submit', class: 'primary' }, 'Save configuration'),
      cancelButton(onCancel),
    ], async (v) => {
      const body = {};
      if (v.name !== c.name) body.name = v.name;
      if (v.phone_number !== c.phone_number) body.phone_number = v.phone_number.trim();
      if (v.agent_config_id && Number(v.agent_config_id) !== c.agent_config_id) body.agent_config_id = Number(v.agent_config_id);
      if (v.trunk_id && Number(v.trunk_id) !== c.trunk_id) body.trunk_id = Number(v.trunk_id);
      if (Number(v.max_call_duration) !== c.max_call_duration) body.max_call_duration = v.max_call_duration === '' ? 0 : Number(v.max_call_duration);
      if ((v.dtmf_enabled === 'on') !== c.dtmf_enabled) body.dtmf_enabled = v.dtmf_enabled === 'on';
      if (!Object.keys(body).length) throw new Error('Nothing changed: edit a field first, or cancel.');
      await patch(`/sip/configs/${c.id}`, body);
      toast(`Configuration ${body.name || c.name} saved`);
      await onSaved();
    }));
}
