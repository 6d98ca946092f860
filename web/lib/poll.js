// Periodic refresh for views: runs fn now and then every intervalMs after
// the previous run ended (runs never overlap), until the view is left.

// Start polling in a view; ctx is the view context (its onCleanup stops
// the loop). fn may be async; its errors are passed to onError, if given,
// and never stop the loop. Returns a function that runs fn again at once.
export function poll(ctx, intervalMs, fn, onError) {
  let stopped = false;
  let timer = null;
  let running = false;

  async function tick() {
    if (stopped || running) return;
    clearTimeout(timer);
    running = true;
    try {
      await fn();
    } catch (err) {
      if (onError) onError(err);
    } finally {
      running = false;
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  }

  ctx.onCleanup(() => {
    stopped = true;
    clearTimeout(timer);
  });
  tick();
  return tick;
}
