import type { INestApplicationContext } from '@nestjs/common';

/**
 * On SIGTERM or SIGINT: close the Nest application (its shutdown hooks stop timers and close
 * connections), then exit 0; a second signal, or a close that hangs past the deadline, exits 1.
 * (Nest's own enableShutdownHooks re-raises the signal, so the exit status would say "killed".)
 */
export function closeOnSignals(app: INestApplicationContext, deadlineMs = 15_000): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    setTimeout(() => {
      process.stderr.write(`shutdown after ${signal} took longer than ${deadlineMs} ms; exiting\n`);
      process.exit(1);
    }, deadlineMs).unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
