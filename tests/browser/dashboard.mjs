// The dashboard in a real browser (Debian's Chromium driven by
// playwright-core), against a real Voxplane started by tests/api/dashboard.rs:
//   VOXPLANE_URL  the server; MAIL_DIR  where it writes .eml files;
//   SCREENSHOTS   where a screenshot of every page goes (.local/screenshots).
// Steps that need the LiveKit simulator ask the Rust side on stdout with a
// line "@@ <command>" and read its one-line answer on stdin.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import http from 'node:http';

const root = new URL('../../', import.meta.url).pathname;
const require = createRequire(path.join(root, '.local/browser/package.json'));
const { chromium } = require('playwright-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const BASE = process.env.VOXPLANE_URL;
const MAIL_DIR = process.env.MAIL_DIR;
const SHOTS = process.env.SCREENSHOTS || path.join(root, '.local/screenshots');
const only = process.env.BROWSER_TEST_ONLY;
fs.mkdirSync(SHOTS, { recursive: true });
for (const f of fs.readdirSync(SHOTS)) if (f.endsWith('.png')) fs.rmSync(path.join(SHOTS, f));

const stdin = readline.createInterface({ input: process.stdin });
const answers = [];
let waiting = null;
stdin.on('line', (l) => { if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l); });
/** Asks the Rust side (which holds the LiveKit simulator) to do something. */
function ask(cmd) {
  console.log(`@@ ${cmd}`);
  return new Promise((resolve, reject) => {
    const done = (l) => (l.startsWith('ok') ? resolve(l.slice(3)) : reject(new Error(`${cmd}: ${l}`)));
    if (answers.length) done(answers.shift()); else waiting = done;
  });
}

function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits for the n-th .eml to `to` whose link goes to `page`; the link, with its origin made the test server's. */
async function mailLink(to, page, after = 0) {
  for (let i = 0; i < 150; i += 1) {
    const files = fs.existsSync(MAIL_DIR) ? fs.readdirSync(MAIL_DIR).filter((f) => f.endsWith('.eml')).sort() : [];
    const links = [];
    for (const f of files) {
      const raw = fs.readFileSync(path.join(MAIL_DIR, f), 'utf8');
      if (!raw.toLowerCase().includes(`to: ${to.toLowerCase()}`)) continue;
      // Quoted-printable soft breaks and escapes.
      const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
      const m = text.match(new RegExp(`https?://[^\\s"<>]+/${page}(\\?[^\\s"<>]*)?`));
      if (m) links.push(m[0]);
    }
    if (links.length > after) {
      const u = new URL(links[after]);
      return BASE + u.pathname + u.search;
    }
    await sleep(200);
  }
  throw new Error(`no e-mail to ${to} with a /${page} link in ${MAIL_DIR}`);
}

const failures = [];
const state = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function newPage(viewport = { width: 1280, height: 860 }) {
  const ctx = await browser.newContext({ viewport, timezoneId: 'Europe/Paris' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  state.last = page;
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400 && r.url().includes('/dashboard/assets/')) failures.push(`asset ${r.url()}: HTTP ${r.status()}`); });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) failures.push(`CSP: ${m.text()}`);
  });
  return page;
}

let shot = 0;
/** Screenshot plus an axe-core check (no serious or critical violation). */
async function check(page, name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  shot += 1;
  await page.screenshot({ path: path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  // Injected through the driver (not a <script> tag), so the page's CSP stays as it is.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  if (result.length) failures.push(`axe on ${name}: ${result.join('; ')}`);
}

async function api(method, p, { key, body } = {}) {
  const res = await fetch(BASE + p, {
    method,
    headers: { ...(key ? { 'X-API-Key': key } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null; try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

const tests = [];
function test(name, fn) { tests.push([name, fn]); }

const stamp = Date.now().toString(36);
const owner = { email: `owner-${stamp}@example.com`, password: 'Correct-Horse-9-battery', name: 'Olive Owner' };
const viewer = { email: `viewer-${stamp}@example.com`, password: 'Viewer-Staple-7-orbit', name: 'Vic Viewer' };

async function signIn(page, who) {
  await page.goto(`${BASE}/sign-in`);
  await page.getByLabel('E-mail', { exact: true }).fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
}

async function registerAndVerify(page, who) {
  await page.goto(`${BASE}/register`);
  await page.getByLabel('Name', { exact: true }).fill(who.name);
  await page.getByLabel('E-mail', { exact: true }).fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('Check your inbox').waitFor();
  const link = await mailLink(who.email, 'verify-email');
  await page.goto(link);
  await page.getByText('Your e-mail address is verified').waitFor();
}

test('root redirects to the dashboard, which asks to sign in', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/sign-in$/);
  const index = await fetch(`${BASE}/dashboard`);
  const policy = index.headers.get('content-security-policy') || '';
  assert(policy.includes("script-src 'self'") && !policy.includes('unsafe-inline'), `strict CSP, got ${policy}`);
  await check(page, 'sign-in');
  await page.context().close();
});

test('register, verify from the e-mailed link, sign in, create a project (overview)', async () => {
  const page = await newPage();
  await registerAndVerify(page, owner);
  await check(page, 'verified');
  await signIn(page, owner);
  await page.getByRole('heading', { name: 'Create your first project' }).waitFor();
  await check(page, 'first-project');
  await page.getByLabel('Project name', { exact: true }).fill('Browser Support');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { name: /Overview/ }).waitFor();
  await page.getByRole('heading', { name: 'This month' }).waitFor();
  await page.getByRole('heading', { name: /Quotas/ }).waitFor();
  await check(page, 'overview');
  state.page = page;
});

test('create an API key (shown once, works), revoke it (then fails against the API)', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByLabel('Name', { exact: true }).fill('ci server');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.getByTestId('new-key').textContent()).trim();
  assert(key.startsWith('pk_'), `a key is shown: ${key}`);
  await page.getByRole('button', { name: 'Copy' }).waitFor();
  assert((await api('GET', '/api/v1/project', { key })).status === 200, 'the new key works');
  await page.getByRole('cell', { name: /^pk_/ }).first().waitFor();
  const masked = await page.getByRole('cell', { name: /^pk_/ }).first().textContent();
  assert(!masked.includes(key), 'the list masks the key');
  await check(page, 'keys');
  await page.getByRole('button', { name: 'Revoke ci server' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
  await page.getByText('Key “ci server” revoked').waitFor();
  const after = await api('GET', '/api/v1/project', { key });
  assert(after.status === 401, `the revoked key fails: ${after.status}`);
  await page.getByLabel('Room', { exact: true }).fill('try-me');
  await page.getByLabel('Identity', { exact: true }).fill('tester');
  await page.getByRole('button', { name: 'Generate test token' }).click();
  const jwt = (await page.getByTestId('test-token').textContent()).trim();
  assert(jwt.split('.').length === 3, `a test token is shown: ${jwt}`);
  // A second key for the live test.
  await page.getByLabel('Name', { exact: true }).fill('live');
  await page.getByRole('button', { name: 'Create key' }).click();
  state.key = (await page.getByTestId('new-key').textContent()).trim();
});

test('agents: create (tool errors shown in words), edit, delete', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Agents' }).click();
  await page.getByText('No agent yet').waitFor();
  await check(page, 'agents-empty');
  await page.getByRole('button', { name: 'New agent' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Support Bot');
  await page.getByLabel('Tools (JSON)', { exact: true }).fill('[{"name": "lookup", "parameters": "not a schema"}]');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('alert').waitFor();
  const msg = await page.getByRole('alert').textContent();
  assert(/tool|parameters/i.test(msg), `a tool error in words: ${msg}`);
  await check(page, 'agent-tool-error');
  await page.getByLabel('Tools (JSON)', { exact: true }).fill('[{"name": "lookup_order", "description": "Find an order", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}]');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('cell', { name: 'Support Bot', exact: true }).waitFor();
  await check(page, 'agents');
  // Edit: a model is set; a second agent is created, then deleted.
  await page.getByRole('row', { name: /Support Bot/ }).getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('LLM model', { exact: true }).fill('gpt-4o-mini');
  await page.getByRole('button', { name: 'Save agent' }).click();
  await page.getByRole('cell', { name: /gpt-4o-mini/ }).waitFor();
  await page.getByRole('button', { name: 'New agent' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Temp Bot');
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('cell', { name: 'Temp Bot', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Delete Temp Bot' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete agent' }).click();
  await page.getByText('Agent deleted').waitFor();
  assert(await page.getByRole('cell', { name: 'Temp Bot', exact: true }).count() === 0, 'the deleted agent is gone');
});

test('knowledge bases: create one, upload a document with progress, watch it index, try a search; web sources: add (listed with crawl status), pages, re-crawl, delete', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Knowledge bases' }).click();
  await page.getByText('No knowledge base yet').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Help center');
  await page.getByRole('button', { name: 'Create knowledge base' }).click();
  await page.getByRole('heading', { name: 'Help center' }).waitFor();
  await page.getByLabel('Document', { exact: true }).setInputFiles({
    name: 'returns.md',
    mimeType: 'text/markdown',
    buffer: Buffer.from('# Returns\n\nYou can return any order within 30 days for a full refund. Print the prepaid label from your account page.\n\n# Shipping\n\nOrders ship within two business days.\n'),
  });
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByText(/Uploaded returns.md/).waitFor();
  await page.getByRole('row', { name: /returns.md/ }).getByText('ready').waitFor({ timeout: 60000 });
  await page.getByLabel('Question', { exact: true }).fill('how long do I have to send an order back?');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText(/within 30 days for a full refund/).first().waitFor();
  assert(await page.locator('.results mark').count() > 0, 'matches are highlighted');
  assert(await page.getByText('<mark>').count() === 0, 'no markup shown as text');
  await check(page, 'knowledge');
  // A web source: a page of a local site, crawled in the background.
  const site = http.createServer((req, res) => {
    if (req.url === '/warranty.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<html><head><title>Warranty</title></head><body><main><h1>Warranty</h1><p>Every router carries a two year warranty covering parts and labour.</p></main></body></html>');
    } else { res.writeHead(404); res.end(); }
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${site.address().port}/warranty.html`;
    const add = page.getByRole('form', { name: 'Add a web source' });
    await add.getByLabel('Source URL', { exact: true }).fill('not a url');
    await add.getByRole('button', { name: 'Add source' }).click();
    await add.getByRole('alert').waitFor();
    await add.getByLabel('Source URL', { exact: true }).fill(url);
    await add.getByRole('button', { name: 'Add source' }).click();
    await page.getByText(/first crawl is queued/).waitFor();
    const row = page.getByRole('row', { name: new RegExp(url.replace(/[.]/g, '\\.')) });
    await row.getByText('ready', { exact: true }).waitFor({ timeout: 60000 });
    await row.getByText('1 of 1 indexed').waitFor();
    await row.getByRole('button', { name: `Pages of ${url}` }).click();
    await page.getByRole('cell', { name: /Warranty/ }).waitFor();
    await row.getByRole('button', { name: `Re-crawl ${url}` }).click();
    await page.getByText(/Re-crawl of .* queued/).waitFor();
    // A URL that answers 404: its page is counted gone; then delete the source.
    const missing = `http://127.0.0.1:${site.address().port}/missing.html`;
    await add.getByLabel('Source URL', { exact: true }).fill(missing);
    await add.getByRole('button', { name: 'Add source' }).click();
    const bad = page.getByRole('row', { name: /missing\.html/ });
    await bad.getByText(/0 of 1 indexed, 1 gone/).waitFor({ timeout: 60000 });
    await check(page, 'knowledge-sources');
    await bad.getByRole('button', { name: `Delete source ${missing}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete source' }).click();
    await page.getByText('Source deleted').waitFor();
    await bad.waitFor({ state: 'detached' });
  } finally {
    site.close();
  }
});

test('SIP: add a trunk and a configuration, edit both (bad values refused in words), dial a number and watch the call status live', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'SIP' }).click();
  await page.getByText('No SIP trunk yet').waitFor();
  await page.getByLabel('Trunk name', { exact: true }).fill('Main line');
  await page.getByLabel('Phone number', { exact: true }).fill('+15551230000');
  await page.getByLabel('Provider address', { exact: true }).fill('sip.provider.example');
  await page.getByRole('button', { name: 'Add trunk' }).click();
  await page.getByRole('cell', { name: 'Main line', exact: true }).waitFor();
  // Edit the trunk: a bad number is refused in words, then a good one saves.
  await page.getByRole('button', { name: 'Edit trunk Main line' }).click();
  const edit = page.getByRole('form', { name: 'Edit trunk Main line' });
  await edit.getByLabel('Trunk name', { exact: true }).fill('Main line EU');
  await edit.getByLabel('Phone number', { exact: true }).fill('12345');
  await edit.getByRole('button', { name: 'Save trunk' }).click();
  const err = await edit.getByRole('alert').textContent();
  assert(/Phone number: Invalid phone number format/.test(err) && /E\.164/.test(err), `the error in words: ${err}`);
  assert(await edit.getByLabel('Phone number', { exact: true }).getAttribute('aria-invalid') === 'true', 'the field is marked');
  await check(page, 'sip-edit-error');
  await edit.getByLabel('Phone number', { exact: true }).fill('+15551230001');
  await edit.getByRole('button', { name: 'Save trunk' }).click();
  await page.getByText('Trunk Main line EU saved').waitFor();
  await page.getByRole('row', { name: /Main line EU/ }).getByRole('cell', { name: '+15551230001' }).waitFor();
  const trunks = await api('GET', '/api/v1/sip/trunks', { key: state.key });
  assert(trunks.json.trunks.some((t) => t.name === 'Main line EU' && t.phone_number === '+15551230001'), `saved through the API: ${trunks.text}`);
  // A configuration, edited: its maximum duration (a bad one refused in words).
  await page.getByLabel('Configuration name', { exact: true }).fill('Support line');
  await page.getByLabel('Number', { exact: true }).fill('+15551230002');
  await page.getByRole('button', { name: 'Add configuration' }).click();
  await page.getByRole('button', { name: 'Edit configuration Support line' }).click();
  const cedit = page.getByRole('form', { name: 'Edit configuration Support line' });
  await cedit.getByLabel('Max call duration (seconds)', { exact: true }).fill('0');
  await cedit.getByRole('button', { name: 'Save configuration' }).click();
  assert(/Max call duration \(seconds\): max_call_duration must be 1 to 86400 seconds/.test(await cedit.getByRole('alert').textContent()), 'the duration error in words');
  await cedit.getByLabel('Max call duration (seconds)', { exact: true }).fill('600');
  await cedit.getByRole('button', { name: 'Save configuration' }).click();
  await page.getByText('Configuration Support line saved').waitFor();
  await page.getByRole('row', { name: /Support line/ }).getByText('10 min').waitFor();
  await page.getByLabel('Number to call', { exact: true }).fill('+15557654321');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  const status = page.getByRole('list', { name: 'Call status' });
  await status.getByText(/Dialing \+15557654321/).waitFor();
  await status.getByText(/answered|active|in_progress|ringing/).first().waitFor();
  await check(page, 'sip');
});

test('live: a room appears when a token dispatches an agent and a participant joins; a transcript line streams in; supervise in listen mode (token shown, joins), take over, release', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Live' }).click();
  await page.getByText('Live: updates appear').waitFor();
  const agents = await api('GET', '/api/v1/agents', { key: state.key });
  const agentId = agents.json.agents[0].id;
  const tok = await api('POST', '/api/v1/token', { key: state.key, body: { room: 'support-1', identity: 'caller-1', agent_config_id: agentId } });
  assert(tok.status === 200 || tok.status === 201, `token: ${tok.text}`);
  assert((tok.json.agents_dispatched || []).includes(agentId), 'the token dispatches the agent');
  await ask(`connect ${tok.json.room} ${tok.json.token}`);
  const row = page.getByRole('row', { name: /support-1/ });
  await row.waitFor();
  await row.getByText('caller-1').waitFor();
  await check(page, 'live-room');
  await row.getByRole('button', { name: 'Watch' }).click();
  const s = await api('POST', '/api/v1/sessions', { key: state.key, body: { room_name: 'support-1' } });
  assert([200, 201, 409].includes(s.status), `session: ${s.text}`);
  await sleep(300);
  const line = await api('POST', '/api/v1/sessions/support-1/transcript', { key: state.key, body: { speaker: 'user', content: 'My order never arrived', timestamp_ms: 1200, is_final: true } });
  assert(line.status === 201, `transcript: ${line.text}`);
  await page.getByRole('list', { name: 'Transcript' }).getByText('My order never arrived').waitFor();
  await check(page, 'live-transcript');
  // Call control: data to the room reaches the simulator.
  await row.getByLabel('Message to the room', { exact: true }).fill('hold on please');
  await row.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText(/^Sent \d+ bytes$/).waitFor();
  assert((await ask('data support-1')).includes('hold on please'), 'the simulator got the data');
  // Supervision: listen (the token is shown and joins), change the mode, release the take-over.
  await row.getByText('call active').waitFor();
  const sup = page.getByRole('form', { name: 'Supervise a call' });
  await sup.getByLabel('Call to supervise', { exact: true }).selectOption('support-1');
  await sup.getByLabel('Mode', { exact: true }).selectOption('listen');
  await sup.getByRole('button', { name: 'Supervise' }).click();
  const supToken = (await page.getByTestId('supervise-token').textContent()).trim();
  assert(supToken.split('.').length === 3, `a supervisor token is shown: ${supToken}`);
  assert(/^wss?:\/\//.test(await page.getByTestId('supervise-url').textContent()), 'the LiveKit URL is shown');
  await page.getByRole('button', { name: 'Copy the supervisor token' }).waitFor();
  await page.getByText(/has no LiveKit client/).waitFor();
  await check(page, 'live-supervise');
  assert((await ask(`connect ${tok.json.room} ${supToken}`)).startsWith('sup-'), 'the token joins the room');
  const change = page.getByRole('form', { name: 'Change the supervision mode' });
  await change.getByLabel('New mode', { exact: true }).selectOption('take_over');
  await change.getByRole('button', { name: 'Change mode' }).click();
  await page.getByTestId('supervision-mode').getByText('Take over').waitFor();
  await page.getByRole('button', { name: 'Release take-over' }).click();
  await page.getByText('Released: the agent speaks again').waitFor();
  await sup.waitFor();
  const rec = await api('POST', '/api/v1/rooms/support-1/recordings/start', { key: state.key, body: { format: 'ogg' } });
  assert(rec.status === 200 || rec.status === 201, `recording: ${rec.text}`);
  await sleep(1500);
  const stop = await api('POST', '/api/v1/rooms/support-1/recordings/stop', { key: state.key, body: {} });
  assert(stop.status === 200, `stop: ${stop.text}`);
  // Removing the participant updates the page live (participant.left).
  await row.getByRole('button', { name: 'Remove caller-1' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await page.getByText('caller-1 removed').waitFor();
  await page.getByRole('row', { name: /support-1/ }).getByText('caller-1', { exact: true }).waitFor({ state: 'detached' });
});

test('overview charts this month by day and service; sessions list and detail with the transcript and a recording that plays and seeks', async () => {
  const page = state.page;
  const u = await api('POST', '/api/v1/usage', { key: state.key, body: { room_name: 'support-1', service: 'llm', provider: 'openai', model: 'gpt-4o', input_tokens: 120000, output_tokens: 30000 } });
  assert(u.status === 201 || u.status === 200, `usage: ${u.text}`);
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('img', { name: /Cost by day and service/ }).waitFor();
  const cost = await page.getByTestId('month-cost').textContent();
  assert(cost !== '$0.00', `this month's cost shows: ${cost}`);
  await check(page, 'overview-chart');
  await page.getByRole('link', { name: 'Sessions' }).click();
  // The recording is completed once the simulator's egress_ended arrives.
  for (let i = 0; i < 50; i += 1) {
    const r = await api('GET', '/api/v1/recordings?room_name=support-1', { key: state.key });
    if (r.json.recordings.some((x) => x.status === 'completed')) break;
    await sleep(200);
  }
  const ranges = [];
  page.on('response', (r) => { if (r.url().includes('/download')) ranges.push(r.status()); });
  await page.getByRole('link', { name: 'support-1' }).first().click();
  await page.getByText('My order never arrived').waitFor();
  const audio = page.getByLabel(/^Recording \d+$/);
  await audio.waitFor();
  const played = await audio.evaluate(async (a) => {
    if (a.readyState < 1) await new Promise((r, j) => { a.addEventListener('loadedmetadata', r, { once: true }); a.addEventListener('error', () => j(new Error(`audio error ${a.error && a.error.code}`)), { once: true }); });
    a.muted = true;
    await a.play();
    a.currentTime = Math.min(a.duration / 2, 1);
    await new Promise((r) => a.addEventListener('seeked', r, { once: true }));
    return { duration: a.duration, time: a.currentTime, error: a.error && a.error.code };
  });
  assert(played.duration > 0 && !played.error, `the recording plays: ${JSON.stringify(played)}`);
  assert(ranges.includes(206), `the player uses Range downloads: ${ranges}`);
  await check(page, 'session-detail');
});

test('webhooks: add an endpoint, send a test, read the failed attempt, redeliver it, rotate the secret', async () => {
  const page = state.page;
  // A receiver that is down (503) until told otherwise.
  let up = false;
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ signature: req.headers['webhook-signature'], body });
      res.writeHead(up ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(up ? 'thanks' : 'receiver down for maintenance');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  try {
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByText('No webhook endpoint yet').waitFor();
    await page.getByLabel('Endpoint URL', { exact: true }).fill(url);
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = (await page.getByTestId('webhook-secret').textContent()).trim();
    assert(secret.startsWith('whsec_'), `the secret is shown once: ${secret}`);
    await page.getByRole('button', { name: 'Send a test event' }).click();
    await page.getByText(/Test event sent to 1 endpoint/).waitFor();
    await page.getByRole('button', { name: 'Delivery log' }).click();
    const failedRow = page.getByRole('row', { name: /failed/ });
    for (let i = 0; i < 50 && !(await failedRow.count()); i += 1) {
      await sleep(200);
      await page.getByRole('button', { name: 'Refresh log' }).click();
    }
    await failedRow.first().getByRole('button', { name: 'Attempts' }).click();
    await page.getByText('receiver down for maintenance').waitFor();
    await page.getByRole('cell', { name: 'HTTP 503' }).first().waitFor();
    await check(page, 'webhook-failed');
    up = true;
    await failedRow.first().getByRole('button', { name: /Redeliver/ }).click();
    await page.getByText('Delivery queued again').waitFor();
    const delivered = page.getByRole('row', { name: /delivered/ });
    for (let i = 0; i < 50 && !(await delivered.count()); i += 1) {
      await sleep(200);
      await page.getByRole('button', { name: 'Refresh log' }).click();
    }
    assert(await delivered.count() === 1, 'the redelivered webhook is delivered');
    assert(received.length === 2 && received[1].body === received[0].body, 'the same event was sent again');
    await check(page, 'webhook-redelivered');
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByText('The new signing secret').waitFor();
    const rotated = (await page.getByTestId('webhook-secret').textContent()).trim();
    assert(rotated.startsWith('whsec_') && rotated !== secret, 'a new secret is shown');
  } finally {
    server.close();
  }
});

test('team: invite a viewer, who accepts from the e-mailed link and sees no management actions (nor supervision, source or trunk changes)', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Team' }).click();
  await page.getByLabel('E-mail', { exact: true }).fill(viewer.email);
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await page.getByRole('cell', { name: viewer.email }).waitFor();
  await check(page, 'team');
  const link = await mailLink(viewer.email, 'accept-invitation');
  const vpage = await newPage({ width: 390, height: 844 });
  await registerAndVerify(vpage, viewer);
  await vpage.goto(link);
  await vpage.waitForURL(/\/sign-in/);
  await vpage.getByLabel('E-mail', { exact: true }).fill(viewer.email);
  await vpage.getByLabel('Password', { exact: true }).fill(viewer.password);
  await vpage.getByRole('button', { name: 'Sign in' }).click();
  await vpage.getByRole('button', { name: 'Accept and join' }).click();
  await vpage.getByRole('heading', { name: /Overview/ }).waitFor();
  await check(vpage, 'viewer-overview-phone');
  await vpage.goto(`${BASE}/dashboard/agents`);
  await vpage.getByText('Support Bot', { exact: true }).waitFor();
  assert(await vpage.getByRole('button', { name: 'New agent' }).count() === 0, 'a viewer has no New agent button');
  assert(await vpage.getByRole('button', { name: 'Edit' }).count() === 0, 'a viewer has no Edit button');
  await vpage.goto(`${BASE}/dashboard/keys`);
  await vpage.getByText('Only admins and owners').waitFor();
  assert(await vpage.getByRole('button', { name: 'Create key' }).count() === 0, 'a viewer has no Create key button');
  await check(vpage, 'viewer-keys-phone');
  // No supervision, no source or trunk changes for a viewer (reads stay).
  await vpage.goto(`${BASE}/dashboard/live`);
  await vpage.getByText('Live: updates appear').waitFor();
  assert(await vpage.getByRole('heading', { name: 'Supervise a call' }).count() === 0, 'a viewer cannot supervise');
  await vpage.goto(`${BASE}/dashboard/knowledge`);
  await vpage.getByRole('button', { name: 'Help center' }).click();
  await vpage.getByRole('row', { name: /warranty\.html/ }).getByRole('button', { name: /^Pages of/ }).waitFor();
  assert(await vpage.getByRole('button', { name: 'Add source' }).count() === 0, 'a viewer adds no source');
  assert(await vpage.getByRole('button', { name: /^Re-crawl/ }).count() === 0, 'a viewer starts no crawl');
  await vpage.goto(`${BASE}/dashboard/sip`);
  await vpage.getByText('Main line EU', { exact: true }).waitFor();
  assert(await vpage.getByRole('button', { name: /^Edit trunk/ }).count() === 0, 'a viewer edits no trunk');
  await vpage.context().close();
});

test('chat: the owner starts a conversation with the viewer and a message appears', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Chat' }).click();
  await page.getByLabel('With', { exact: true }).selectOption({ label: viewer.name });
  await page.getByRole('button', { name: 'Start conversation' }).click();
  await page.getByLabel('Message', { exact: true }).fill('Welcome to the team');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByRole('list', { name: /Messages of/ }).getByText('Welcome to the team').waitFor();
  await check(page, 'chat');
});

test('sign out (another tab\'s live socket is closed by the server, the tab goes to sign-in); reset the password from the e-mailed link; change it; sign out everywhere; confirm a new e-mail address', async () => {
  const page = state.page;
  await page.getByRole('link', { name: 'Account' }).click();
  await check(page, 'account');
  // Another tab on the live page: signing out closes its monitor socket
  // (the server does, 4001) and the tab goes to the sign-in page by itself.
  const live = await page.context().newPage();
  live.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  let socketClosed = false;
  live.on('websocket', (ws) => { if (ws.url().includes('/ws/monitor')) ws.on('close', () => { socketClosed = true; }); });
  await live.goto(`${BASE}/dashboard/live`);
  await live.getByText('Live: updates appear').waitFor();
  await page.getByRole('button', { name: 'Sign out', exact: true }).first().click();
  await page.waitForURL(/\/sign-in/);
  await live.waitForURL(/\/sign-in/, { timeout: 10000 });
  assert(socketClosed, 'the live tab\'s monitor socket is closed');
  await live.close();
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('E-mail', { exact: true }).fill(owner.email);
  await page.getByRole('button', { name: 'E-mail me a reset link' }).click();
  await page.getByText('a reset link is on its way').waitFor();
  const link = await mailLink(owner.email, 'reset-password');
  await page.goto(link);
  owner.password = 'Another-Lantern-5-river';
  await page.getByLabel('New password', { exact: true }).fill(owner.password);
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await page.waitForURL(/\/sign-in/);
  await check(page, 'after-reset');
  await signIn(page, owner);
  await page.goto(`${BASE}/dashboard/account`);
  await page.getByLabel('Current password', { exact: true }).fill(owner.password);
  owner.password = 'Third-Compass-8-meadow';
  await page.getByLabel('New password', { exact: true }).fill(owner.password);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed').waitFor();
  await page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await page.waitForURL(/\/sign-in/);
  await page.goto(`${BASE}/dashboard/keys`);
  await page.waitForURL(/\/sign-in/);
  await signIn(page, owner);
  await page.waitForURL(/\/dashboard\/keys/);
  // An e-mail change is confirmed from the link sent to the new address.
  const moved = `moved-${stamp}@example.com`;
  await page.goto(`${BASE}/dashboard/account`);
  await page.getByLabel('E-mail', { exact: true }).fill(moved);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Confirm the new address').waitFor();
  await page.goto(await mailLink(moved, 'confirm-email'));
  await page.getByText('Your new e-mail address is confirmed').waitFor();
  await check(page, 'email-confirmed');
  const me = await page.evaluate(async () => (await fetch('/api/v1/auth/me')).json());
  assert(me.account.email === moved, `the address changed: ${JSON.stringify(me)}`);
});

let failed = 0;
for (const [name, fn] of tests) {
  if (only && !name.includes(only)) continue;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    if (state.last) await state.last.screenshot({ path: path.join(SHOTS, `failed-${failed}.png`), fullPage: true }).catch(() => {});
    break;
  }
}
for (const f of failures) console.log(`FAIL ${f}`);
await browser.close();
stdin.close();
process.exit(failed || failures.length ? 1 : 0);
