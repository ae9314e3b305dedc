// Live: rooms and participants, updated from /ws/monitor without a reload,
// the transcript of a room streaming as it is spoken, call control and
// supervision (./supervise.js). When the server closes the socket because
// the session ended (4001, signed out here or elsewhere) the page goes to
// the sign-in page.
import { h, mount, header, table, errorBox, form, field, toast, confirmDialog, badge } from '../ui.js';
import { get, post, del } from '../api.js';
import * as supervise from './supervise.js';

export async function render(el, { app, onCleanup }) {
  const status = h('p', { class: 'muted', role: 'status' }, 'Connecting…');
  const roomsBox = h('div', {});
  const transcript = h('ol', { class: 'transcript', 'aria-live': 'polite', 'aria-label': 'Transcript' });
  const rooms = new Map();
  const active = new Set(); // rooms with an active session
  let watching = null;
  const canAct = app.can('member');
  const sup = canAct ? supervise.panel(app) : null;
  const act = async (fn, done) => { try { await fn(); toast(done); } catch (e) { toast(e.message, 'error'); } };
  const enc = encodeURIComponent;
  const short = (n) => {
    const p = app.project.room_prefix;
    return n && p && n.startsWith(p) && /[_-]/.test(n.charAt(p.length)) ? n.slice(p.length + 1) : n;
  };
  const people = (r) => (r.participants.size ? h('ul', { class: 'people' }, [...r.participants].map((id) => h('li', {}, id,
    canAct ? [' ',
      h('button', { type: 'button', class: 'small', 'aria-label': `Mute ${id}`, onclick: () => act(() => post(`/rooms/${enc(r.name)}/participants/${enc(id)}/mute`, { muted: true }), `${id} muted`) }, 'Mute'),
      h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${id}`, onclick: async () => {
        if (await confirmDialog(`Remove ${id} from ${r.name}?`, 'Remove')) act(() => post(`/rooms/${enc(r.name)}/kick/${enc(id)}`), `${id} removed`);
      } }, 'Remove')] : null))) : 'none');
  // One form per room, kept across redraws: a message being typed survives
  // the events that redraw the table.
  const dataForms = new Map();
  const sendData = (r) => dataForms.get(r.name) || dataForms.set(r.name, form({ class: 'inline', 'aria-label': `Send data to ${r.name}` }, [
    field('Message to the room', h('input', { name: 'data', required: true, maxlength: 15000 })),
    h('button', { type: 'submit', class: 'small' }, 'Send'),
  ], async (v, f) => { const x = await post(`/rooms/${enc(r.name)}/send-data`, { data: v.data, topic: 'dashboard' }); f.reset(); toast(`Sent ${x.bytes} bytes`); })).get(r.name);
  const draw = () => { if (sup) sup.update(active); return mount(roomsBox, table([
    { label: 'Room', render: (r) => [r.name, active.has(r.name) ? [' ', badge('call active', 'ok')] : null] },
    { label: 'Participants', render: people },
    { label: 'Actions', render: (r) => h('div', {},
      h('button', { type: 'button', class: 'small', onclick: () => watch(r.name) }, watching === r.name ? 'Watching' : 'Watch'),
      canAct ? [h('button', { type: 'button', class: 'small danger', 'aria-label': `End room ${r.name}`, onclick: async () => {
        if (await confirmDialog(`End the room ${r.name} for everyone in it?`, 'End room')) act(() => del(`/rooms/${enc(r.name)}`), `Room ${r.name} ended`);
      } }, 'End room'), sendData(r)] : null) },
  ], [...rooms.values()], 'No room is active. Rooms appear here as soon as they start.', 'Live rooms')); };
  const room = (name) => {
    if (!rooms.has(name)) rooms.set(name, { name, participants: new Set() });
    return rooms.get(name);
  };
  try {
    const r = await get('/rooms');
    for (const x of r.rooms || []) room(x.name);
    const s = await get('/sessions?status=active&per_page=100');
    for (const x of s.sessions || []) active.add(short(x.room_name));
  } catch (e) { mount(el, errorBox(e)); return; }
  draw();
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/monitor?project_id=${app.project.id}`;
  const ws = new WebSocket(url);
  const send = (m) => ws.readyState === 1 && ws.send(JSON.stringify(m));
  const watch = (name) => {
    watching = name;
    mount(transcript);
    send({ action: 'subscribe', channel: `room:${name}` });
    send({ action: 'transcript', room: name });
    draw();
  };
  const line = (d) => transcript.append(h('li', {}, h('strong', {}, `${d.speaker || 'speaker'}: `), d.content || d.text || ''));
  ws.addEventListener('open', () => {
    status.textContent = 'Live: updates appear as they happen.';
    send({ action: 'subscribe', channel: 'rooms' });
    send({ action: 'subscribe', channel: 'sessions' });
  });
  let leaving = false;
  ws.addEventListener('close', async (ev) => {
    if (leaving) return;
    status.textContent = `Disconnected (${ev.reason || ev.code}). Reload the page to reconnect.`;
    // 4001: the session ended. Asking who is signed in takes the page to
    // the sign-in page when it did (and only then).
    if (ev.code === 4001) { try { await get('/auth/me', { project: false }); } catch { /* signed out */ } }
  });
  ws.addEventListener('message', (ev) => {
    let m; try { m = JSON.parse(ev.data); } catch { return; }
    const d = m.data || {};
    const name = short(d.room_name || d.room);
    switch (m.type) {
      case 'room.created': room(name); break;
      case 'room.closed': rooms.delete(name); dataForms.delete(name); break;
      case 'participant.joined': room(name).participants.add(d.identity); break;
      case 'participant.left': if (rooms.has(name)) room(name).participants.delete(d.identity); break;
      case 'transcript.new': if (d.is_final !== false && (!watching || name === watching)) line(d); return;
      case 'session.started': active.add(name); break;
      case 'session.ended': active.delete(name); if (sup) sup.ended(name); break;
      case 'transcript.snapshot': for (const l of (Array.isArray(d) ? d : d.lines || d.transcripts || [])) line(l); return;
      default: return;
    }
    draw();
  });
  onCleanup(() => { leaving = true; ws.close(); });
  mount(el, header('Live'), status, h('div', { class: 'grid2' },
    h('section', { class: 'card', 'aria-labelledby': 'live-rooms' }, h('h2', { id: 'live-rooms' }, 'Rooms'), roomsBox),
    h('section', { class: 'card', 'aria-labelledby': 'live-tx' }, h('h2', { id: 'live-tx' }, 'Transcript'), transcript)),
  sup ? h('section', { class: 'card', 'aria-labelledby': 'live-sup' }, h('h2', { id: 'live-sup' }, 'Supervise a call'), sup.el) : null);
}
