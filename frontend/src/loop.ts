// The frame loop: calls frame(now, dt) once per animation frame until stopped.

export type FrameFn = (now: number, dt: number) => void;

export interface FrameScheduler {
  request(cb: (now: number) => void): number;
  cancel(id: number): void;
}

export const browserFrames: FrameScheduler = {
  request: (cb) => requestAnimationFrame(cb),
  cancel: (id) => cancelAnimationFrame(id),
};

/** Starts the loop; returns a function that stops it. dt is ms since the last frame (0 on the first). */
export function startLoop(frame: FrameFn, scheduler: FrameScheduler = browserFrames): () => void {
  let last = Number.NaN;
  let id = 0;
  let running = true;
  const tick = (now: number) => {
    if (!running) return;
    const dt = Number.isNaN(last) ? 0 : Math.min(now - last, 1000);
    last = now;
    try {
      frame(now, dt);
    } finally {
      // Keep the loop alive even if a frame throws (the error still surfaces).
      if (running) id = scheduler.request(tick);
    }
  };
  id = scheduler.request(tick);
  return () => {
    running = false;
    scheduler.cancel(id);
  };
}
