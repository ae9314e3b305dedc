// 1000 /ws/monitor sockets subscribed to `rooms`; reports commit→socket latency.
const WebSocket = require('ws');
const [url, key, count, expected] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const lat = [];
let ready = 0, received = 0;
for (let i = 0; i < count; i++) {
  const ws = new WebSocket(`${url}/ws/monitor?api_key=${key}`);
  ws.on('open', () => ws.send(JSON.stringify({ action: 'subscribe', channel: 'rooms' })));
  ws.on('message', (m) => {
    const msg = JSON.parse(m);
    if (msg.type === 'subscribed') { if (++ready === count) console.log('READY'); return; }
    if (msg.type !== 'participant.joined') return;
    lat.push(Date.now() - Date.parse(msg.timestamp));
    if (++received === count * expected) finish();
  });
  ws.on('close', (code) => { if (code === 4008) console.log('closed 4008'); });
}
function finish() {
  lat.sort((a, b) => a - b);
  const p = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
  console.log(`messages: ${lat.length}; commit→socket latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${lat[lat.length - 1]} ms`);
  process.exit(0);
}
setTimeout(() => { console.log(`timeout: ${received}/${count * expected} received`); finish(); }, 120000);
