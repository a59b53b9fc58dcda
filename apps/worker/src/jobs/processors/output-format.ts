import type { OutputFormat } from '@app/db';
import type { Prediction, Row } from '@app/ml';

/** What each line of a batch prediction's file holds: the row's number, its prediction, its inputs when asked. */
export interface OutputLayout {
  format: OutputFormat;
  /** The dataset's columns, echoed in this order (include_inputs), else none. */
  inputs: string[] | null;
  /** A classifier's labels (a CSV column of probability each); null for a regression. */
  labels: string[] | null;
}

/**
 * Encodes scored rows as a batch prediction's file does, a chunk at a time: NDJSON (one
 * `{row, prediction, inputs?}` object a line, the prediction as a sync prediction answers it) or
 * CSV (RFC 4180: CRLF, a header in the first chunk, fields quoted when they hold a quote, a comma
 * or a line break). CSV cells echoed from the inputs that a spreadsheet would run as a formula
 * (starting with =, +, -, @, a tab or a carriage return, and not a number) are prefixed with `'`.
 */
export function encodeRows(
  layout: OutputLayout,
  firstRow: number,
  rows: Row[],
  predictions: Array<Prediction & { version: number }>,
  withHeader: boolean,
): Buffer {
  const lines: string[] = [];
  if (layout.format === 'ndjson') {
    rows.forEach((row, i) => {
      const line: Record<string, unknown> = { row: firstRow + i, prediction: predictions[i] };
      if (layout.inputs) line.inputs = pick(row, layout.inputs);
      lines.push(JSON.stringify(line));
    });
    return Buffer.from(lines.length ? `${lines.join('\n')}\n` : '', 'utf8');
  }
  if (withHeader) lines.push(csvHeader(layout).map(csvField).join(','));
  rows.forEach((row, i) => {
    const cells: string[] = [String(firstRow + i)];
    for (const c of layout.inputs ?? []) cells.push(csvField(neutralised(row[c])));
    const p = predictions[i];
    if ('value' in p) cells.push(String(p.value));
    else {
      cells.push(csvField(p.label));
      for (const label of layout.labels ?? []) cells.push(String(p.probabilities[label] ?? 0));
    }
    lines.push(cells.join(','));
  });
  return Buffer.from(lines.length ? `${lines.join('\r\n')}\r\n` : '', 'utf8');
}

/** The CSV columns: `row`, the inputs, then `predicted_value`, or `predicted_label` and `probability_<label>` per label. */
export function csvHeader(layout: OutputLayout): string[] {
  const prediction = layout.labels ? ['predicted_label', ...layout.labels.map((l) => `probability_${l}`)] : ['predicted_value'];
  return ['row', ...(layout.inputs ?? []), ...prediction];
}

function pick(row: Row, columns: string[]): Row {
  const out: Row = {};
  for (const c of columns) out[c] = row[c] ?? null;
  return out;
}

/** RFC 4180: a field holding a quote, a comma, CR or LF is quoted, its quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** An input cell as text, with a leading `'` where a spreadsheet would read it as a formula (OWASP's CSV injection advice). */
export function neutralised(value: Row[string] | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'string') return String(value);
  if (/^[=+\-@\t\r]/.test(value) && !Number.isFinite(Number(value))) return `'${value}`;
  return value;
}
