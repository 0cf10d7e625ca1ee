/** Sealed records, for stores that offer `sealing` (see "Sealed records" in `store/store.ts`). */
import { type Kit, text } from './kit.js';

export function sealingTests({ test, expect, sut, second }: Kit): void {
  test('sealed records round-trip and refuse a value moved, written without the key, or replayed', async (context) => {
    const sealing = sut().store.sealing;
    if (!sealing) return context.skip('the store has no sealing (no encryption key)');
    const key = 'ca/x/revoked.json';
    const reason = (run: () => unknown) =>
      Promise.resolve()
        .then(run)
        .then(
          () => 'accepted',
          (error: { code?: string; details?: { reason?: string } }) =>
            `${error.code}:${error.details?.reason}`,
        );
    await sut().store.put(key, sealing.seal(key, 'first', 1));
    const first = await sut().store.get(key);
    expect(sealing.open(key, first)).toMatchObject({ version: 1 });
    await sut().store.put(key, sealing.seal(key, 'second', 2));
    const again = sealing.open(key, await sut().store.get(key));
    expect({ value: text(again?.value ?? null), version: again?.version }).toEqual({
      value: 'second',
      version: 2,
    });
    await sut().store.put(key, first!);
    expect(await reason(async () => sealing.open(key, await sut().store.get(key)))).toBe(
      'STORE_CORRUPT:replayed',
    );
    await sut().store.put('ca/y/revoked.json', first!);
    expect(
      await reason(async () => sealing.open('ca/y/revoked.json', await sut().store.get('ca/y/revoked.json'))),
    ).toBe('STORE_CORRUPT:decrypt-failed');
    await sut().store.put('ca/z/revoked.json', 'written without the key');
    expect(
      await reason(async () => sealing.open('ca/z/revoked.json', await sut().store.get('ca/z/revoked.json'))),
    ).toBe('STORE_CORRUPT:not-sealed');
    expect(sealing.open('ca/none', await sut().store.get('ca/none'))).toBeNull();
    if (!sut().second) return;
    const other = await second(context);
    await sut().store.put(key, sealing.seal(key, 'third', 3));
    expect(other.sealing?.open(key, await other.get(key))).toMatchObject({ version: 3 });
    expect(await reason(() => other.sealing?.open(key, first))).toBe('STORE_CORRUPT:replayed');
  });
}
