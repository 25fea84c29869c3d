// The ceiling of the CA benchmark's harness: an HTTPS server with the CA's TLS settings (TLS 1.3,
// client certificates required) whose POST /v1/renew parses and schema-checks the JSON body and
// answers with a fixed reply as large as a real renewal's, and does nothing else: no CSR check, no
// signature, no database. Its rate under the same load bounds what any CA could reach here.
// Usage (by bench/ca-issuance.ts): node mtls-ceiling-server.js KEY CERT BUNDLE REPLY_BYTES
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const [keyFile, certFile, bundleFile, replyBytes] = process.argv.slice(2);
if (!keyFile || !certFile || !bundleFile)
  throw new Error('usage: mtls-ceiling-server KEY CERT BUNDLE [BYTES]');
const reply = {
  identity: 'spiffe://bench.example/node/ceiling',
  certificate: 'x'.repeat(Number(replyBytes ?? 2400)),
};
const app = Fastify({
  bodyLimit: 64 * 1024,
  https: {
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    ca: readFileSync(bundleFile),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  },
});
app.post(
  '/v1/renew',
  {
    schema: {
      body: {
        type: 'object',
        required: ['csr'],
        additionalProperties: false,
        properties: { csr: { type: 'string', maxLength: 16384 } },
      },
    },
  },
  async () => reply,
);
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
console.log(`listening on https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
