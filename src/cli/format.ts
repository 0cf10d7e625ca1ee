/** Plain-text output: aligned tables, dates, durations. No colours, no terminal tricks. */

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** `2026-03-12 14:05 UTC`: minutes are enough to read a table by. */
export function utcMinute(date: Date | null): string {
  if (!date) return '-';
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `in 3d`, `5h ago`: the largest unit, whole numbers. */
export function relative(ms: number): string {
  const abs = Math.abs(ms);
  const [value, unit] =
    abs >= 86_400_000
      ? [abs / 86_400_000, 'd']
      : abs >= 3_600_000
        ? [abs / 3_600_000, 'h']
        : abs >= 60_000
          ? [abs / 60_000, 'min']
          : [abs / 1000, 's'];
  const shown = `${Math.floor(value)}${unit}`;
  return ms < 0 ? `${shown} ago` : `in ${shown}`;
}

/** Text from the store shown in a table: one line, no control characters, bounded. */
export function cell(text: string, max = 60): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
