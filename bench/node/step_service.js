// The ticketing benchmark's step service (docs/performance.md) in Node, with Node's
// own http module and nothing else: the kind of service docs/performance.md's
// comparison with Restate and DBOS was measured against, so usher's figures
// can be set beside theirs on the same work.
//
//   node bench/node/step_service.js [--port 0]
//
// Same paths, answers and /stats as usher-bench-service (ticketing_rules.h):
// prints `port=N` once it listens on 127.0.0.1 and serves keep-alive HTTP/1.1
// until SIGTERM/SIGINT, on one thread as Node does.
'use strict';

const http = require('http');

const PATHS = ['/reserve', '/reserve/cancel', '/pay', '/pay/refund', '/confirm', '/notify'];
const counts = new Map(PATHS.map((p) => [p, 0]));

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function answer(path, sagaId, seat) {
  if (path === '/reserve') return [200, JSON.stringify({ reservationId: `r-${sagaId}` })];
  if (path === '/pay') {
    if (seat % 10 === 0) return [422, '{"error":"card declined"}'];
    return [200, JSON.stringify({ paymentId: `p-${sagaId}` })];
  }
  return [200, '{}'];
}

function handle(req, res, raw) {
  if (req.method === 'GET' && req.url === '/stats') return reply(res, 200, JSON.stringify(Object.fromEntries(counts)));
  if (req.method === 'POST' && req.url === '/stats/reset') {
    for (const p of PATHS) counts.set(p, 0);
    return reply(res, 200, '{}');
  }
  if (req.method !== 'POST' || !counts.has(req.url)) return reply(res, 404, '{"error":"no such path"}');
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    body = null;
  }
  if (!body || typeof body.sagaId !== 'string' || !Number.isInteger(body.seat))
    return reply(res, 400, '{"error":"body must hold sagaId (string) and seat (integer)"}');
  counts.set(req.url, counts.get(req.url) + 1);
  const [status, text] = answer(req.url, body.sagaId, body.seat);
  return reply(res, status, text);
}

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;

const server = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`port=${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
