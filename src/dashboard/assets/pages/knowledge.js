// Knowledge bases: create, upload documents with progress, watch their
// indexing status, web sources (./kb_sources.js), and try a search.
import { h, mount, header, table, timeEl, form, field, confirmDialog, toast, errorBox, badge } from '../ui.js';
import { get, post, del, upload } from '../api.js';
import * as sources from './kb_sources.js';

/** A snippet whose matches the API wraps in <mark>…</mark>, built as elements (never parsed as HTML). */
function highlight(snippet) {
  const out = [];
  let marked = false;
  for (const part of String(snippet).split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') marked = true;
    else if (part === '</mark>') marked = false;
    else if (part) out.push(marked ? h('mark', {}, part) : part);
  }
  return out;
}

const KIND = { ready: 'ok', indexed: 'ok', completed: 'ok', failed: 'bad', error: 'bad' };

async function base(box, kb, canEdit, onCleanup) {
  const docs = h('div', {});
  const results = h('div', { 'aria-live': 'polite' });
  let timer = null;
  const loadDocs = async () => {
    clearTimeout(timer);
    try {
      const r = await get(`/knowledge-bases/${kb.id}/documents?per_page=50`);
      const list = r.documents || [];
      mount(docs, table([
        { label: 'Document', render: (d) => d.title || d.name },
        { label: 'Status', render: (d) => [badge(d.status, KIND[d.status]), d.error ? h('span', { class: 'error' }, ` ${d.error}`) : null] },
        { label: 'Chunks', render: (d) => String(d.chunk_count) },
        { label: 'Added', render: (d) => timeEl(d.created_at) },
        { label: 'Actions', render: (d) => (canEdit ? h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${d.name}`, onclick: async () => {
          if (!await confirmDialog(`Delete the document ${d.name} and its chunks?`, 'Delete document')) return;
          try { await del(`/knowledge-bases/${kb.id}/documents/${d.id}`); toast('Document deleted'); await loadDocs(); } catch (e) { toast(e.message, 'error'); }
        } }, 'Delete') : '—') },
      ], list, 'No document yet. Upload a PDF, Word, HTML, Markdown or text file.', 'Documents'));
      // Indexing runs in the background: look again while some are not done.
      if (list.some((d) => ['pending', 'processing', 'queued', 'indexing'].includes(d.status))) timer = setTimeout(loadDocs, 1500);
    } catch (e) { mount(docs, errorBox(e)); }
  };
  onCleanup(() => clearTimeout(timer));
  const progress = h('progress', { max: 1, value: 0, 'aria-label': 'Upload progress', hidden: true });
  const up = canEdit ? form({ class: 'inline', 'aria-label': 'Upload a document' }, [
    field('Document', h('input', { name: 'file', type: 'file', required: true, accept: '.pdf,.docx,.html,.htm,.md,.txt,.csv,.json' })),
    h('button', { type: 'submit', class: 'primary' }, 'Upload'), progress,
  ], async (v, f) => {
    if (!v.file || !v.file.size) throw new Error('Choose a file to upload first.');
    const data = new FormData();
    data.append('file', v.file, v.file.name);
    progress.hidden = false;
    try {
      const r = await upload(`/knowledge-bases/${kb.id}/documents`, data, (p) => { progress.value = p; });
      toast(`Uploaded ${r.source_file || v.file.name}: ${r.indexing_status}`);
      f.reset();
    } finally { progress.hidden = true; progress.value = 0; }
    await loadDocs();
  }) : null;
  const search = form({ class: 'inline', 'aria-label': 'Try a search' }, [
    field('Question', h('input', { name: 'query', type: 'search', required: true, placeholder: 'How do I reset my router?' })),
    field('Mode', h('select', { name: 'mode' }, ['hybrid', 'semantic', 'keyword'].map((m) => h('option', { value: m }, m)))),
    h('button', { type: 'submit' }, 'Search'),
  ], async (v) => {
    const r = await post('/knowledge/search', { knowledge_base_id: kb.id, query: v.query, mode: v.mode, top_k: 5 });
    mount(results, (r.results || []).length ? h('ol', { class: 'results' }, r.results.map((x) => h('li', {},
      h('p', {}, h('strong', {}, x.citation ? x.citation.document : x.source), ` · score ${Number(x.score).toFixed(3)}`),
      h('p', {}, x.citation ? highlight(x.citation.snippet) : x.content)))) : h('p', { class: 'empty' }, 'Nothing matched. Try other words.'));
  });
  mount(box, h('section', { class: 'card', 'aria-labelledby': 'kb-h' },
    h('h2', { id: 'kb-h' }, kb.name), kb.description ? h('p', { class: 'muted' }, kb.description) : null,
    up, docs, sources.section(kb, canEdit, onCleanup), h('h3', {}, 'Try a search'), search, results));
  await loadDocs();
}

export async function render(el, { app, params, onCleanup }) {
  const canEdit = app.can('member');
  const list = h('div', {});
  const detail = h('div', {});
  const open = (kb) => { history.replaceState({}, '', `/dashboard/knowledge?kb=${kb.id}`); base(detail, kb, canEdit, onCleanup); };
  const load = async () => {
    const r = await get('/knowledge-bases');
    const kbs = r.knowledge_bases || [];
    mount(list, table([
      { label: 'Name', render: (k) => h('button', { type: 'button', class: 'link', onclick: () => open(k) }, k.name) },
      { label: 'Chunks', render: (k) => String(k.chunk_count) },
      { label: 'Created', render: (k) => timeEl(k.created_at) },
      { label: 'Actions', render: (k) => (canEdit ? h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${k.name}`, onclick: async () => {
        if (!await confirmDialog(`Delete the knowledge base ${k.name} with all its documents?`, 'Delete')) return;
        try { await del(`/knowledge-bases/${k.id}`); toast('Knowledge base deleted'); mount(detail); await load(); } catch (e) { toast(e.message, 'error'); }
      } }, 'Delete') : '—') },
    ], kbs, 'No knowledge base yet. Create one, upload documents, and let agents search them.', 'Knowledge bases'));
    const want = kbs.find((k) => String(k.id) === params.get('kb'));
    if (want) open(want);
  };
  const create = canEdit ? form({ class: 'inline', 'aria-label': 'Create a knowledge base' }, [
    field('Name', h('input', { name: 'name', required: true, maxlength: 200 })),
    field('Description', h('input', { name: 'description' })),
    h('button', { type: 'submit', class: 'primary' }, 'Create knowledge base'),
  ], async (v, f) => {
    const body = { name: v.name };
    if (v.description) body.description = v.description;
    const r = await post('/knowledge-bases', body);
    f.reset();
    toast(`Knowledge base “${v.name}” created`);
    await load();
    open(r.knowledge_base);
  }) : null;
  mount(el, header('Knowledge bases'), create, list, detail);
  try { await load(); } catch (e) { mount(list, errorBox(e)); }
}
