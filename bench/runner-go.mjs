// The start signal of the bench's child runners: a runner says it is warm and waits for the
// parent's SIGUSR2, so that the parent brackets exactly the measured part with its /proc snapshots.

/**
 * Listens for SIGUSR2 (before saying ready: a signal with no listener would kill the process),
 * prints `{"event": <event>, "pid"}` and resolves on the signal, or at once when `wait` is false.
 * A signal listener alone does not keep Node's event loop alive: a timer does, for at most 10 minutes.
 */
export function readyThenGo(event, wait = true) {
  const go = new Promise((resolve) => {
    const timer = setTimeout(resolve, 600_000);
    process.once('SIGUSR2', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  process.stdout.write(`${JSON.stringify({ event, pid: process.pid })}\n`);
  return wait ? go : Promise.resolve();
}
