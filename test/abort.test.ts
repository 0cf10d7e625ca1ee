import { describe, expect, it } from 'vitest';
import { untilAborted } from '../src/abort.js';

const given = () => new Error('given up');

describe('untilAborted', () => {
  it('settles as the work does while the signal has not fired', async () => {
    const signal = new AbortController().signal;
    await expect(untilAborted(Promise.resolve(7), signal, given)).resolves.toBe(7);
    await expect(untilAborted(Promise.reject(new Error('own')), signal, given)).rejects.toThrow('own');
  });

  it('rejects with onAbort() when the signal fires first, and drops the late outcome quietly', async () => {
    const controller = new AbortController();
    let fail!: (e: Error) => void;
    const work = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const waiting = untilAborted(work, controller.signal, given);
      controller.abort();
      await expect(waiting).rejects.toThrow('given up');
      fail(new Error('late'));
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects at once for a signal that has already fired', async () => {
    await expect(untilAborted(new Promise(() => {}), AbortSignal.abort(), given)).rejects.toThrow('given up');
  });
});
