import { describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { IssuerCooldowns, isCaFailure } from '../../src/issuers/cooldown.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

const ids = ['primary', 'fallback', 'third'];
const down = () => new CertkeeperError('ISSUER_UNAVAILABLE', 'connection refused');

function setup(random = () => 0.5) {
  const clock = new FakeClock(Date.UTC(2026, 11, 3));
  return { clock, cooldowns: new IssuerCooldowns(clock, { baseMs: 60_000, maxMs: 3_600_000, random }) };
}

describe('IssuerCooldowns', () => {
  it('keeps the configured order while every CA answers', () => {
    const { cooldowns } = setup();
    expect(cooldowns.order(ids, (i) => i)).toEqual(ids);
  });

  it('moves a CA that is down behind the others, and back when its cooldown ends', () => {
    const { clock, cooldowns } = setup();
    expect(cooldowns.failed('primary', down())).toMatchObject({ failures: 1, code: 'ISSUER_UNAVAILABLE' });
    expect(cooldowns.order(ids, (i) => i)).toEqual(['fallback', 'third', 'primary']);
    clock.advance(59_000);
    expect(cooldowns.order(ids, (i) => i)[0]).toBe('fallback');
    clock.advance(1_000);
    expect(cooldowns.order(ids, (i) => i)).toEqual(ids);
  });

  it('never drops a CA: when all cool down they are all still tried, soonest back first', () => {
    const { cooldowns } = setup();
    cooldowns.failed('primary', down());
    cooldowns.failed('primary', down());
    cooldowns.failed('fallback', down());
    cooldowns.failed('third', down());
    cooldowns.failed('third', down());
    cooldowns.failed('third', down());
    expect(cooldowns.order(ids, (i) => i)).toEqual(['fallback', 'primary', 'third']);
  });

  it('doubles per consecutive failure up to maxMs, and a success clears it', () => {
    const { clock, cooldowns } = setup();
    const lengths = Array.from({ length: 9 }, () => cooldowns.failed('primary', down())!.until - clock.now());
    expect(lengths).toEqual([
      60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
    cooldowns.succeeded('primary');
    expect(cooldowns.states()).toEqual([]);
    expect(cooldowns.failed('primary', down())!.until - clock.now()).toBe(60_000);
  });

  it('spreads the cooldown by the jitter, both ways', () => {
    const low = setup(() => 0).cooldowns.failed('primary', down())!;
    const high = setup(() => 0.999_999).cooldowns.failed('primary', down())!;
    const start = Date.UTC(2026, 11, 3);
    expect(low.until - start).toBe(48_000);
    expect(high.until - start).toBe(72_000);
  });

  it("honours the CA's Retry-After when it is longer, bounded by maxMs", () => {
    const { clock, cooldowns } = setup();
    const limited = (ms: number) =>
      new CertkeeperError('RATE_LIMITED', 'too many orders', { details: { retryAfterMs: ms } });
    expect(cooldowns.failed('primary', limited(600_000))!.until - clock.now()).toBe(600_000);
    expect(cooldowns.failed('fallback', limited(10 * 86_400_000))!.until - clock.now()).toBe(3_600_000);
  });

  it('ignores failures that refuse one certificate rather than say the CA is down', () => {
    const { cooldowns } = setup();
    for (const code of ['CHALLENGE_FAILED', 'ACME_PROBLEM', 'ORDER_INVALID', 'CA_REFUSED'] as const) {
      const error = new CertkeeperError(code, 'refused');
      expect(isCaFailure(error)).toBe(false);
      expect(cooldowns.failed('primary', error)).toBeNull();
    }
    expect(cooldowns.failed('primary', new Error('plain'))).toBeNull();
    expect(cooldowns.order(ids, (i) => i)).toEqual(ids);
  });
});
