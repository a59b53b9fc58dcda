import type { OutputFormat } from '@app/db';
import type { Row, Scores } from '@app/ml';

/** What each line of a batch prediction's file holds: the row's number, its prediction, its inputs when asked. */
export interface OutputLayout {
  format: OutputFormat;
  /** The dataset's columns, echoed in this order (include_inputs), else none. */
  inputs: string[] | null;
  /** A classifier's labels (a CSV column of probability each); null for a regression. */
  labels: string[] | null;
  /** The version that scored the rows (in each NDJSON prediction, as a sync prediction has it). */
  version: number;
}

/**
 * Encodes a scored chunk as a batch prediction's file holds it. NDJSON: one `{row, prediction,
 * inputs?}` object a line, the prediction exactly as JSON.stringify writes a sync prediction
 * (`{label, probabilities, version}` or `{value, version}`), the inputs the row as stored. CSV
 * (RFC 4180): CRLF, a header in the file's first chunk, fields quoted when they hold a quote, a
 * comma or a line break; echoed input cells a spreadsheet would run as a formula (starting with
 * =, +, -, @, a tab or a carriage return, and not a number) prefixed with `'`. Written with
 * templates rather than an object per row: at 100,000 rows a chunk the objects cost more than
 * the model.
 */
export function encodeChunk(layout: OutputLayout, firstRow: number, lines: string[], scores: Scores, withHeader: boolean): Buffer {
  const out: string[] = [];
  const { labels, values, predicted } = scores;
  const k = labels?.length ?? 1;
  if (layout.format === 'ndjson') {
    const version = `,"version":${layout.version}}`;
    const labelJson = labels?.map((l) => JSON.stringify(l)) ?? [];
    const keys = labels?.map((l, j) => `${j ? ',' : ''}${JSON.stringify(l)}:`) ?? [];
    for (let i = 0; i < lines.length; i++) {
      let prediction: string;
      if (predicted) {
        prediction = `{"label":${labelJson[predicted[i]]},"probabilities":{`;
        for (let j = 0; j < k; j++) prediction += keys[j] + num(values[i * k + j]);
        prediction += `}${version}`;
      } else prediction = `{"value":${num(values[i])}${version}`;
      out.push(`{"row":${firstRow + i},"prediction":${prediction}${layout.inputs ? `,"inputs":${lines[i]}` : ''}}\n`);
    }
    return Buffer.from(out.join(''), 'utf8');
  }
  if (withHeader) out.push(`${csvHeader(layout).map(csvField).join(',')}\r\n`);
  const labelCells = labels?.map(csvField) ?? [];
  for (let i = 0; i < lines.length; i++) {
    let line = String(firstRow + i);
    if (layout.inputs) {
      const row = JSON.parse(lines[i]) as Row;
      for (const c of layout.inputs) line += `,${csvField(neutralised(row[c]))}`;
    }
    if (predicted) {
      line += `,${labelCells[predicted[i]]}`;
      for (let j = 0; j < k; j++) line += `,${num(values[i * k + j])}`;
    } else line += `,${num(values[i])}`;
    out.push(`${line}\r\n`);
  }
  return Buffer.from(out.join(''), 'utf8');
}

/** The CSV columns: `row`, the inputs, then `predicted_value`, or `predicted_label` and `probability_<label>` per label. */
export function csvHeader(layout: OutputLayout): string[] {
  const prediction = layout.labels ? ['predicted_label', ...layout.labels.map((l) => `probability_${l}`)] : ['predicted_value'];
  return ['row', ...(layout.inputs ?? []), ...prediction];
}

/** A number as JSON writes it (not finite: null). */
function num(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
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
