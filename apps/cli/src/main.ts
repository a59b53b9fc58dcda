import { run } from './program.js';

// bin/aiaas.mjs imports this file; program.ts holds the commands.
await run(process.argv);
