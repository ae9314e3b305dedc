// Live supervision from the Live page (members and above; the API asks for
// the member role): join a call's room in a chosen mode, change the mode,
// release. The page gets a LiveKit token and URL for the supervisor's own
// LiveKit client: the dashboard ships no LiveKit client (no media here).
import { h, mount, form, field, toast, copy } from '../ui.js';
import { post, patch } from '../api.js';

export const MODES = [
  ['listen', 'Listen: hear the call, nobody hears you'],
  ['whisper', 'Whisper: only the agent hears you'],
  ['barge', 'Barge in: everyone hears you'],
  ['take_over', 'Take over: you replace the agent (it is muted)'],
];
const LABEL = Object.fromEntries(MODES.map(([m, l]) => [m, l.split(':')[0]]));

const modeSelect = (selected) => h('select', { name: 'mode' },
  MODES.map(([m, l]) => h('option', { value: m, selected: m === selected }, l)));

/** A LiveKit identity from the signed-in account: `sup-<local part>`. */
function defaultIdentity(account) {
  const local = ((account && account.email) || 'supervisor').split('@')[0];
  return `sup-${local.replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 128);
}

/** A value shown in full with a Copy button. */
function copyable(label, value, testId) {
  return h('div', { class: 'field' },
    h('strong', {}, label),
    h('div', { class: 'copy-row' },
      h('code', { 'data-testid': testId }, value),
      h('button', { type: 'button', class: 'small', 'aria-label': `Copy the ${label.toLowerCase()}`, onclick: () => copy(value) }, 'Copy')));
}

/**
 * The Supervise card. `update(activeRooms)` redraws it for the rooms that
 * have an active session; `ended(room)` says a room's session ended.
 */
export function panel(app) {
  const el = h('div', {});
  const enc = encodeURIComponent;
  let rooms = [];
  let current = null; // {room, identity, mode, token, wsUrl}
  const draw = () => {
    if (current) return mount(el, supervising());
    if (!rooms.length) return mount(el, h('p', { class: 'empty' }, 'No call to supervise: calls with an active session appear here.'));
    // What was chosen so far survives a redraw (a call starting or ending).
    const old = el.querySelector('form');
    const was = old ? Object.fromEntries(new FormData(old).entries()) : {};
    return mount(el, form({ class: 'inline', 'aria-label': 'Supervise a call' }, [
      field('Call to supervise', h('select', { name: 'room' }, rooms.map((r) => h('option', { value: r, selected: r === was.room }, r)))),
      field('Mode', modeSelect(was.mode || 'listen')),
      field('Your LiveKit identity', h('input', { name: 'identity', required: true, maxlength: 128, pattern: '[A-Za-z0-9._\\-]+', value: was.identity || defaultIdentity(app.account) }), 'Letters, digits, . _ -'),
      h('button', { type: 'submit', class: 'primary' }, 'Supervise'),
    ], async (v) => {
      const r = await post(`/sessions/${enc(v.room)}/supervise`, { identity: v.identity, mode: v.mode });
      current = { room: v.room, identity: v.identity, mode: r.supervision.mode, token: r.token, wsUrl: r.wsUrl };
      toast(`Supervising ${v.room} (${LABEL[current.mode]})`);
      draw();
    }));
  };
  const supervising = () => {
    const c = current;
    const change = form({ class: 'inline', 'aria-label': 'Change the supervision mode' }, [
      field('New mode', modeSelect(c.mode)),
      h('button', { type: 'submit' }, 'Change mode'),
    ], async (v) => {
      const r = await patch(`/sessions/${enc(c.room)}/supervise`, { identity: c.identity, mode: v.mode });
      c.mode = r.supervision.mode;
      toast(`Mode changed to ${LABEL[c.mode]}`);
      draw();
    });
    const release = h('button', { type: 'button', class: c.mode === 'take_over' ? 'danger' : '', onclick: async () => {
      try {
        await post(`/sessions/${enc(c.room)}/supervise/release`, { identity: c.identity });
        toast(c.mode === 'take_over' ? 'Released: the agent speaks again' : 'Supervision ended');
        current = null;
        draw();
      } catch (e) { toast(e.message, 'error'); }
    } }, c.mode === 'take_over' ? 'Release take-over' : 'Stop supervising');
    return h('div', { 'data-testid': 'supervision' },
      h('p', { role: 'status' }, 'Supervising ', h('strong', {}, c.room), ` as ${c.identity}, mode: `, h('strong', { 'data-testid': 'supervision-mode' }, LABEL[c.mode]), '.'),
      h('p', { class: 'muted' }, 'The dashboard has no LiveKit client, so it plays no audio. Join the call with a LiveKit client of your own (your app, or a LiveKit example client) using this server URL and token; the mode is enforced by the server whichever client you use.'),
      copyable('LiveKit URL', c.wsUrl, 'supervise-url'),
      copyable('Supervisor token', c.token, 'supervise-token'),
      change,
      h('div', { class: 'actions' }, release));
  };
  draw();
  return {
    el,
    update(active) {
      const next = [...active].sort();
      // Redrawn only when the calls change: a form being filled stays as it is.
      if (next.join('\n') === rooms.join('\n')) return;
      rooms = next;
      if (!current) draw();
    },
    ended(room) {
      if (current && current.room === room) {
        toast(`The call in ${room} ended: supervision is over`);
        current = null;
        draw();
      }
    },
  };
}
