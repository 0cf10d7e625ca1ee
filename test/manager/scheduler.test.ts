import { describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/clock.js';
import { Scheduler, WALL_CLOCK_CHECK_MS } from '../../src/manager/scheduler.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

function setup(concurrency = 4) {
  const clock = new FakeClock(0);
  const ran: [string, number][] = [];
  const scheduler = new Scheduler(clock, async (id) => void ran.push([id, clock.now()]), { concurrency });
  scheduler.start();
  return { clock, ran, scheduler };
}

describe('Scheduler', () => {
  it('keeps one timer for any number of entries and runs them in due order', async () => {
    const { clock, ran, scheduler } = setup();
    for (let i = 0; i < 1000; i++) scheduler.set(`c${i}`, 10_000 + ((i * 7919) % 1000));
    expect(clock.pending).toBe(1);
    await clock.advance(11_000);
    await scheduler.idle();
    expect(ran).toHaveLength(1000);
    const times = ran.map(([, t]) => t);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('the last set wins, earlier or later, and delete cancels', async () => {
    const { clock, ran, scheduler } = setup();
    scheduler.set('a', 100);
    scheduler.set('a', 500);
    scheduler.set('b', 300);
    scheduler.set('b', 50);
    scheduler.set('c', 10);
    scheduler.delete('c');
    expect(scheduler.dueAt('a')).toBe(500);
    await clock.advance(1000);
    await scheduler.idle();
    expect(ran).toEqual([
      ['b', 50],
      ['a', 500],
    ]);
  });

  it('runs an entry scheduled in the past at once', async () => {
    const { clock, ran, scheduler } = setup();
    await clock.advance(1000);
    scheduler.set('late', 10);
    await clock.advance(0);
    await scheduler.idle();
    expect(ran).toEqual([['late', 1000]]);
  });

  it('never runs more jobs at once than its concurrency', async () => {
    const clock = new FakeClock(0);
    let running = 0;
    let peak = 0;
    const scheduler = new Scheduler(
      clock,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      },
      { concurrency: 3 },
    );
    scheduler.start();
    for (let i = 0; i < 20; i++) scheduler.set(`x${i}`, 1);
    await clock.advance(1);
    await scheduler.idle();
    expect(peak).toBe(3);
  });

  it('a failing job does not stop the others, and stop() disarms', async () => {
    const clock = new FakeClock(0);
    const ran: string[] = [];
    const scheduler = new Scheduler(clock, async (id) => {
      ran.push(id);
      if (id === 'bad') throw new Error('boom');
    });
    scheduler.start();
    scheduler.set('bad', 1);
    scheduler.set('good', 2);
    await clock.advance(5);
    await scheduler.idle();
    expect(ran).toEqual(['bad', 'good']);
    scheduler.set('later', 10);
    scheduler.stop();
    expect(clock.pending).toBe(0);
  });

  it('waits beyond the 24.8-day timer limit by re-arming', async () => {
    const { clock, ran, scheduler } = setup();
    scheduler.set('far', 60 * 86_400_000);
    await clock.advance(30 * 86_400_000);
    expect(ran).toEqual([]);
    await clock.advance(30 * 86_400_000);
    await scheduler.idle();
    expect(ran).toEqual([['far', 60 * 86_400_000]]);
  });

  it('runs what a wall-clock jump made due within a minute of process time (timers count process time)', async () => {
    const { clock, ran, scheduler } = setup();
    scheduler.set('tomorrow', 86_400_000);
    await clock.advance(1_000);
    // Suspend or NTP step: the wall clock is now past the due time, no timer fired.
    clock.set(86_400_000 + 5_000);
    await clock.advance(WALL_CLOCK_CHECK_MS);
    await scheduler.idle();
    expect(ran).toEqual([['tomorrow', expect.any(Number)]]);
    expect(ran[0]![1]).toBeLessThanOrEqual(86_400_000 + 5_000 + WALL_CLOCK_CHECK_MS);
  });

  it('with real Node timers and a wall clock that jumps, the due entry runs long before its timer would have', async () => {
    // The wall clock is Date.now() plus an offset the test moves; the timers are Node's own, which
    // count the time the process runs, exactly as with systemClock after a suspend or NTP step.
    const offset = { ms: 0 };
    const clock: Clock = {
      now: () => Date.now() + offset.ms,
      setTimeout: systemClock.setTimeout,
      clearTimeout: systemClock.clearTimeout,
    };
    let ran!: () => void;
    const done = new Promise<void>((resolve) => {
      ran = resolve;
    });
    const scheduler = new Scheduler(clock, async () => ran());
    scheduler.start();
    try {
      scheduler.set('in-a-minute', clock.now() + 60_000);
      offset.ms = 61_000;
      // Noticed at the first wall-clock check, an eighth of the minute at most; the timer alone
      // would wait the whole minute.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('not run within 20 s'), 20_000);
      });
      expect(await Promise.race([done.then(() => 'ran'), late])).toBe('ran');
      clearTimeout(timer);
    } finally {
      scheduler.stop();
    }
  });
});
