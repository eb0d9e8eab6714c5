/**
 * Ctrl-C during a long job (a generation, a conversion): an AbortSignal, so the job stops at its
 * next step and removes what it was writing instead of dying mid-write; the command then exits
 * with 130, the status a shell gives a process that SIGINT ended.
 */
let interrupted = false;

export function interruptSignal(message = 'interrupted'): { signal: AbortSignal; release(): void } {
  const ac = new AbortController();
  const onInt = (): void => {
    interrupted = true;
    ac.abort(new Error(message));
  };
  process.once('SIGINT', onInt);
  return { signal: ac.signal, release: () => process.off('SIGINT', onInt) };
}

/** Whether a job of this process was stopped by Ctrl-C. */
export const wasInterrupted = (): boolean => interrupted;
