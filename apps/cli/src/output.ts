/** What the commands print: JSON for scripts (`--json`), aligned text for people. */
export class Output {
  constructor(
    readonly json: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  /** Prints `data` as JSON under --json, else what `human` returns (lines). */
  result<T>(data: T, human: (data: T) => string | string[]): void {
    if (this.json) this.out.write(`${JSON.stringify(data, null, 2)}\n`);
    else this.line(...[human(data)].flat());
  }

  line(...lines: string[]): void {
    for (const l of lines) this.out.write(`${l}\n`);
  }
}

export type Column<T> = [header: string, value: (row: T) => unknown];

/** Rows under upper-case headers, columns padded to their widest cell (as `gh` prints lists). */
export function table<T>(rows: readonly T[], columns: Column<T>[], opts: { upperCaseHeaders?: boolean } = {}): string[] {
  if (rows.length === 0) return ['(none)'];
  const headers = columns.map(([h]) => (opts.upperCaseHeaders === false ? h : h.toUpperCase()));
  const cells = [headers, ...rows.map((r) => columns.map(([, get]) => cell(get(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  return cells.map((c) =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** `key  value` lines, for one object. */
export function details(pairs: Array<[string, unknown]>): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`);
}

export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 1000
    ? n.toFixed(1)
    : n
        .toPrecision(4)
        .replace(/(\.\d*?)0+$/, '$1')
        .replace(/\.$/, '');
}

export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '-';
  const total = Math.round(s);
  if (total < 60) return `${total}s`;
  const m = Math.floor(total / 60);
  return m < 60 ? `${m}m${String(total % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  return s < 1 ? 'just now' : `${formatSeconds(s)} ago`;
}

/** A metrics object as a two-column table: scalars first, then per-class figures and the confusion matrix. */
export function metricsTable(metrics: Record<string, unknown> | null | undefined): string[] {
  if (!metrics) return [];
  const scalars = Object.entries(metrics).filter(([, v]) => typeof v === 'number');
  const lines = table(scalars, [
    ['metric', ([k]) => k],
    ['value', ([, v]) => v],
  ]);
  const perClass = metrics.per_class as Record<string, Record<string, number>> | undefined;
  if (perClass && typeof perClass === 'object') {
    lines.push(
      '',
      ...table(Object.entries(perClass), [
        ['class', ([k]) => k],
        ['precision', ([, v]) => v.precision],
        ['recall', ([, v]) => v.recall],
        ['f1', ([, v]) => v.f1],
        ['support', ([, v]) => v.support],
      ]),
    );
  }
  const cm = metrics.confusion_matrix as { labels: string[]; matrix: number[][] } | undefined;
  if (cm?.labels && cm.matrix) {
    lines.push('', 'confusion matrix (rows: true label, columns: predicted)');
    const rows = cm.labels.map((l, i) => [l, ...cm.matrix[i]] as unknown[]);
    lines.push(
      ...table(rows, [['', (r) => r[0]], ...cm.labels.map((l, j): Column<unknown[]> => [l, (r) => r[j + 1]])], { upperCaseHeaders: false }),
    );
  }
  return lines;
}
