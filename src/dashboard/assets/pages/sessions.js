// Sessions: filters, pages, and a session's detail with transcript and costs.
import { h, mount, header, table, timeEl, form, field, errorBox, money, badge, shortRoom } from '../ui.js';
import { get, currentProject } from '../api.js';

function seconds(v) {
  if (v === null || v === undefined) return '—';
  const n = Math.round(Number(v));
  return `${Math.floor(n / 60)}:${String(n % 60).padStart(2, '0')}`;
}

/** The recordings of a room, each playable in the page (the browser seeks with Range requests). */
function recordings(list) {
  if (!list.length) return h('p', { class: 'empty' }, 'No recording of this session.');
  return h('ul', { class: 'recordings' }, list.map((r) => {
    const src = `/api/v1/recordings/${r.id}/download?project_id=${currentProject()}`;
    return h('li', {},
      h('p', {}, `${r.format} · ${r.status} · ${seconds(r.duration_seconds)} · started `, timeEl(r.started_at)),
      r.status === 'completed'
        ? [h('audio', { controls: true, preload: 'metadata', src, 'aria-label': `Recording ${r.id}` }), ' ', h('a', { href: src, download: `recording-${r.id}.${r.format}` }, 'Download')]
        : h('p', { class: r.status === 'error' ? 'error' : 'muted' }, r.status === 'error' ? `Recording failed: ${r.error || 'unknown error'}` : 'Still recording…'));
  }));
}

async function detail(el, id, prefix) {
  const [d, t] = await Promise.all([get(`/sessions/${id}/detail`), get(`/sessions/${id}/transcript`).catch(() => null)]);
  const s = d.session || d;
  const lines = (t && (t.transcripts || t.lines)) || d.transcript || [];
  const recs = await get(`/recordings?room_name=${encodeURIComponent(s.room_name)}&per_page=20`).catch(() => ({ recordings: [] }));
  const costs = d.costs || d.usage || {};
  mount(el,
    header(`Session ${shortRoom(s.room_name, prefix) || id}`, h('a', { class: 'button', href: '/dashboard/sessions' }, 'All sessions')),
    h('dl', { class: 'stats' },
      h('div', {}, h('dt', {}, 'Status'), h('dd', {}, s.status || '—')),
      h('div', {}, h('dt', {}, 'Started'), h('dd', {}, timeEl(s.started_at))),
      h('div', {}, h('dt', {}, 'Ended'), h('dd', {}, timeEl(s.ended_at))),
      h('div', {}, h('dt', {}, 'Cost'), h('dd', { title: `LLM ${money(costs.llm)} · speech to text ${money(costs.stt)} · text to speech ${money(costs.tts)}` }, money(costs.total ?? 0))),
      h('div', {}, h('dt', {}, 'Of which LLM'), h('dd', {}, money(costs.llm ?? 0)))),
    h('section', { class: 'card' }, h('h2', {}, 'Recordings'), recordings(recs.recordings || [])),
    h('section', { class: 'card' }, h('h2', {}, 'Transcript'),
      lines.length ? h('ol', { class: 'transcript' }, lines.map((l) => h('li', {}, h('strong', {}, `${l.speaker || l.role || 'speaker'}: `), l.content || l.text || ''))) : h('p', { class: 'empty' }, 'No transcript lines.')));
}

export async function render(el, { params, app }) {
  const prefix = app.project.room_prefix;
  if (params.get('id')) {
    try { await detail(el, Number(params.get('id')), prefix); } catch (e) { mount(el, header('Session'), errorBox(e)); }
    return;
  }
  const list = h('div', {});
  const q = new URLSearchParams({ per_page: '25' });
  const load = async (page = 1) => {
    q.set('page', String(page));
    try {
      const r = await get(`/sessions?${q}`);
      mount(list, table([
        { label: 'Room', render: (x) => h('a', { href: `/dashboard/sessions?id=${x.id}` }, shortRoom(x.room_name, prefix)) },
        { label: 'Agent', render: (x) => x.agent_name || '—' },
        { label: 'Status', render: (x) => badge(x.status, x.status === 'active' ? 'ok' : '') },
        { label: 'Type', render: (x) => x.session_type },
        { label: 'Duration', render: (x) => `${Math.round(x.duration)} s` },
        { label: 'Lines', render: (x) => String(x.message_count) },
        { label: 'Started', render: (x) => timeEl(x.started_at) },
      ], r.sessions || [], 'No session matches. Sessions appear when a call starts.', 'Sessions'),
      r.total_pages > 1 ? h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', disabled: r.page <= 1, onclick: () => load(r.page - 1) }, 'Previous'),
        h('span', {}, `Page ${r.page} of ${r.total_pages} (${r.total} sessions)`),
        h('button', { type: 'button', disabled: r.page >= r.total_pages, onclick: () => load(r.page + 1) }, 'Next')) : null);
    } catch (e) { mount(list, errorBox(e)); }
  };
  const agents = (await get('/agents').catch(() => ({ agents: [] }))).agents || [];
  const filters = form({ class: 'inline', 'aria-label': 'Filter sessions' }, [
    field('Agent', h('select', { name: 'agent_config_id' }, h('option', { value: '' }, 'any'), agents.map((a) => h('option', { value: a.id }, a.name)))),
    field('Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), h('option', { value: 'active' }, 'active'), h('option', { value: 'completed' }, 'completed'))),
    field('Type', h('select', { name: 'session_type' }, h('option', { value: '' }, 'any'), h('option', { value: 'voice' }, 'voice'), h('option', { value: 'sip' }, 'sip'))),
    field('From', h('input', { name: 'from', type: 'date' })),
    field('To', h('input', { name: 'to', type: 'date' })),
    h('button', { type: 'submit' }, 'Apply'),
  ], async (v) => {
    for (const k of ['status', 'session_type', 'agent_config_id']) { if (v[k]) q.set(k, v[k]); else q.delete(k); }
    if (v.from) q.set('from', new Date(`${v.from}T00:00:00`).toISOString()); else q.delete('from');
    if (v.to) q.set('to', new Date(`${v.to}T23:59:59`).toISOString()); else q.delete('to');
    await load(1);
  });
  mount(el, header('Sessions'), filters, list);
  await load(1);
}
