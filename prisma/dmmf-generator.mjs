#!/usr/bin/env node
// A Prisma generator that writes the schema's DMMF as JSON, so that a test can compare the
// migrations with schema.prisma without the schema engine (which can't be fetched offline).
// It speaks Prisma's generator protocol: JSON-RPC requests on stdin, answers on stderr.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';

const reply = (id, result) => process.stderr.write(`${JSON.stringify({ jsonrpc: '2.0', id, result })}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.method === 'getManifest') {
    reply(message.id, { manifest: { prettyName: 'DMMF JSON', defaultOutput: '../libs/db/src/generated/dmmf.json' } });
  } else if (message.method === 'generate') {
    const file = message.params.generator.output.value;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(message.params.dmmf.datamodel, null, 2));
    reply(message.id, null);
  }
});
