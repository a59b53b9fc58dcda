// The baseline: a bare Fastify server answering GET <BASELINE_PATH> with the JSON body in
// BASELINE_BODY (the API's real answer, captured by the scenario): no auth, no rate limit, no
// database, no hooks, default logger off. Prints {"event":"baseline.listening","url":...} when ready.
import Fastify from 'fastify';

const body = JSON.parse(process.env.BASELINE_BODY ?? '{}');
const path = process.env.BASELINE_PATH ?? '/';
const app = Fastify({ logger: false });
// Returned as an object so that Fastify serializes it on every request, as the API does.
app.get(path, async () => body);
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ event: 'baseline.listening', url: address })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => app.close().then(() => process.exit(0)));
