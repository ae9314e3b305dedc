// Team chat: the project's conversations (direct and groups), messages and
// sending. New messages are fetched every few seconds while a chat is open.
import { h, mount, header, form, field, toast, errorBox, timeEl, badge } from '../ui.js';
import { get, post } from '../api.js';

export async function render(el, { app, onCleanup }) {
  const pid = app.project.id;
  const listBox = h('div', {});
  const convo = h('div', {});
  let timer = null;
  onCleanup(() => clearInterval(timer));
  let members = [];
  const title = (c) => c.name || c.members.filter((m) => m.account_id !== app.account.id).map((m) => m.name || m.email).join(', ') || 'Just you';
  const open = async (chat) => {
    clearInterval(timer);
    const log = h('ol', { class: 'chat-log', 'aria-live': 'polite', 'aria-label': `Messages of ${title(chat)}` });
    let last = 0;
    const add = (m) => {
      last = Math.max(last, m.id);
      const who = chat.members.find((x) => x.account_id === m.sender_account_id);
      log.append(h('li', {}, h('strong', {}, `${who ? who.name || who.email : 'system'}: `), m.content, ' ', h('small', { class: 'muted' }, timeEl(m.created_at))));
    };
    const more = async () => {
      try {
        const r = await post('/chat/messages', last ? { chat_id: chat.id, after: last, limit: 50 } : { chat_id: chat.id, limit: 50 });
        const msgs = (r.messages || []).slice().sort((a, b) => a.id - b.id);
        msgs.forEach(add);
        if (msgs.length) await post('/chat/mark-read', { chat_id: chat.id, message_id: msgs[msgs.length - 1].id }).catch(() => {});
      } catch (e) { clearInterval(timer); log.append(h('li', {}, errorBox(e))); }
    };
    const send = form({ class: 'inline', 'aria-label': 'Send a message' }, [
      field('Message', h('input', { name: 'content', required: true, maxlength: 4000, autocomplete: 'off' })),
      h('button', { type: 'submit', class: 'primary' }, 'Send'),
    ], async (v, f) => {
      await post('/chat/send-message', { chat_id: chat.id, content: v.content, client_id: crypto.randomUUID() });
      f.reset();
      await more();
    });
    mount(convo, h('section', { class: 'card' }, h('h2', {}, title(chat)), log, send));
    await more();
    timer = setInterval(more, 3000);
  };
  const load = async () => {
    const r = await post('/chat/fetch-chats', {});
    const chats = r.chats || [];
    mount(listBox, chats.length ? h('ul', { class: 'chat-list' }, chats.map((c) => h('li', {},
      h('button', { type: 'button', class: 'link', onclick: () => open(c) }, title(c)),
      c.unread_count ? [' ', badge(`${c.unread_count} new`, 'ok')] : null))) : h('p', { class: 'empty' }, 'No conversation yet. Start one with a team member.'));
  };
  try {
    members = ((await get(`/projects/${pid}/members`, { project: false })).members || []).filter((m) => m.account_id !== app.account.id);
    await load();
  } catch (e) { mount(el, header('Chat'), errorBox(e)); return; }
  const start = members.length ? form({ class: 'inline', 'aria-label': 'Start a conversation' }, [
    field('With', h('select', { name: 'account_id' }, members.map((m) => h('option', { value: m.account_id }, m.name || m.email)))),
    h('button', { type: 'submit' }, 'Start conversation'),
  ], async (v) => {
    const r = await post('/chat/create-chat', { account_id: Number(v.account_id) });
    toast('Conversation ready');
    await load();
    await open(r.chat);
  }) : h('p', { class: 'muted' }, 'Invite team members to chat with them.');
  mount(el, header('Chat'), start, h('div', { class: 'grid2' }, h('section', { class: 'card' }, h('h2', {}, 'Conversations'), listBox), convo));
}
