// Overview: usage and cost, a chart by day and service (inline SVG),
// quota bars, rooms and sessions active now.
import { h, s, mount, money, header, table, timeEl, errorBox, shortRoom } from '../ui.js';
import { get } from '../api.js';

const SERVICES = [['llm_cost', 'LLM', 'c-llm'], ['stt_cost', 'Speech to text', 'c-stt'], ['tts_cost', 'Text to speech', 'c-tts']];

/** A stacked bar chart of cost per day and service. */
export function chart(days) {
  const W = 640; const H = 200; const pad = 28;
  const max = Math.max(0.000001, ...days.map((d) => Number(d.cost || 0)));
  const bw = (W - pad) / Math.max(days.length, 1);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H + 24}`, role: 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'chart' },
    s('title', { id: 'chart-title', text: 'Cost by day and service' }),
    s('desc', { id: 'chart-desc', text: days.map((d) => `${d.period}: ${money(d.cost)}`).join('; ') || 'No usage' }),
    s('line', { x1: pad, y1: H, x2: W, y2: H, class: 'axis' }),
    s('text', { x: 0, y: 12, class: 'tick', text: money(max) }),
    s('text', { x: 0, y: H, class: 'tick', text: '$0' }));
  days.forEach((d, i) => {
    let y = H;
    for (const [key, label, cls] of SERVICES) {
      const v = Number(d[key] || 0);
      const bh = (v / max) * (H - 16);
      if (bh <= 0) continue;
      y -= bh;
      svg.append(s('rect', { x: pad + i * bw + 2, y, width: Math.max(bw - 4, 1), height: bh, class: cls },
        s('title', { text: `${d.period} ${label}: ${money(v)}` })));
    }
    if (days.length <= 10 || i % Math.ceil(days.length / 8) === 0) {
      svg.append(s('text', { x: pad + i * bw + bw / 2, y: H + 16, class: 'tick', 'text-anchor': 'middle', text: String(d.period).slice(5) }));
    }
  });
  return h('figure', { class: 'chart-box' }, svg,
    h('figcaption', { class: 'legend' }, SERVICES.map(([, label, cls]) => h('span', {}, h('i', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), label))));
}

function bar(label, q) {
  const pct = q.limit > 0 ? Math.min(100, Math.round((q.used / q.limit) * 100)) : 0;
  const fill = h('div', { class: `fill ${pct >= 90 ? 'hot' : ''}` });
  fill.style.width = `${pct}%`;
  return h('div', { class: 'quota' },
    h('div', { class: 'quota-label' }, h('span', {}, label), h('span', {}, `${q.used} of ${q.limit < 0 ? 'unlimited' : q.limit}`)),
    h('div', { class: 'bar', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': Math.max(q.limit, 0), 'aria-valuenow': q.used }, fill));
}

const QUOTA_LABELS = {
  sessions: 'Sessions this month', recordings: 'Recordings this month', rooms: 'Rooms active now', agents: 'Agents',
  knowledge_bases: 'Knowledge bases', webhook_configs: 'Webhook endpoints', sip_configs: 'SIP configurations', team_members: 'Team members',
};

export async function render(el, { app }) {
  mount(el, header(`Overview · ${app.project.name}`), h('p', { class: 'muted' }, 'Loading…'));
  const [usage, quota, rooms, active] = await Promise.allSettled([
    get('/usage?period=month&group_by=day'),
    get('/quota'),
    get('/rooms'),
    get('/sessions?status=active&per_page=10'),
  ]);
  const parts = [header(`Overview · ${app.project.name}`)];
  if (usage.status === 'fulfilled') {
    const u = usage.value; const t = u.totals || {};
    parts.push(h('section', { class: 'card', 'aria-labelledby': 'usage-h' },
      h('h2', { id: 'usage-h' }, 'This month'),
      h('dl', { class: 'stats' },
        h('div', {}, h('dt', {}, 'Cost'), h('dd', { 'data-testid': 'month-cost' }, money(t.cost_usd))),
        h('div', {}, h('dt', {}, 'Audio minutes'), h('dd', {}, Number(t.audio_minutes || 0).toFixed(1))),
        h('div', {}, h('dt', {}, 'LLM tokens'), h('dd', {}, Number((t.input_tokens || 0) + (t.output_tokens || 0)).toLocaleString())),
        h('div', {}, h('dt', {}, 'API calls'), h('dd', {}, Number(t.api_calls || 0).toLocaleString()))),
      (u.breakdown || []).length ? chart(u.breakdown) : h('p', { class: 'empty' }, 'No usage recorded this month yet.')));
  } else parts.push(errorBox(usage.reason));
  if (quota.status === 'fulfilled') {
    const q = quota.value;
    parts.push(h('section', { class: 'card', 'aria-labelledby': 'quota-h' },
      h('h2', { id: 'quota-h' }, `Quotas · ${q.plan_display || q.plan} plan`),
      Object.entries(QUOTA_LABELS).filter(([k]) => q.quotas[k]).map(([k, label]) => bar(label, q.quotas[k]))));
  } else parts.push(errorBox(quota.reason));
  const roomsBox = h('section', { class: 'card', 'aria-labelledby': 'rooms-h' }, h('h2', { id: 'rooms-h' }, 'Active rooms'));
  if (rooms.status === 'fulfilled') {
    roomsBox.append(table([
      { label: 'Room', render: (r) => r.name },
      { label: 'Participants', render: (r) => String(r.numParticipants) },
      { label: 'Started', render: (r) => timeEl(new Date(r.createdAt * 1000).toISOString()) },
    ], rooms.value.rooms || [], 'No room is active right now.', 'Active rooms'));
  } else roomsBox.append(errorBox(rooms.reason));
  const sessBox = h('section', { class: 'card', 'aria-labelledby': 'sess-h' }, h('h2', { id: 'sess-h' }, 'Sessions in progress'));
  if (active.status === 'fulfilled') {
    sessBox.append(table([
      { label: 'Room', render: (x) => h('a', { href: `/dashboard/sessions?id=${x.id}` }, shortRoom(x.room_name, app.project.room_prefix)) },
      { label: 'Agent', render: (x) => x.agent_name || '—' },
      { label: 'Started', render: (x) => timeEl(x.started_at) },
    ], active.value.sessions || [], 'No session is in progress.', 'Sessions in progress'));
  } else sessBox.append(errorBox(active.reason));
  parts.push(h('div', { class: 'grid2' }, roomsBox, sessBox));
  mount(el, ...parts);
}
