// Webhook receivers for the events benchmark: one Node process listening on
// several ports, answering 200 and logging (webhook-id, payload timestamp,
// receive time) per delivery to <dir>/recv-<port>.log. Lighter than Python
// servers, so the harness leaves the CPU to Voxplane.
// Usage: node receiver.js <dir> <port>...   (the log is reopened when <dir>
// is moved away between phases)
const http = require('http');
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
for (const port of process.argv.slice(3)) {
  const file = path.join(dir, `recv-${port}.log`);
  let fd = null;
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now() / 1000;
      let ts = '';
      try { ts = JSON.parse(Buffer.concat(chunks)).timestamp; } catch (_) {}
      if (fd === null || !fs.existsSync(file)) fd = fs.openSync(file, 'a');
      fs.writeSync(fd, `${req.headers['webhook-id']}\t${ts}\t${now}\n`);
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
  }).listen(+port, '127.0.0.1');
}
