import { ApiError } from '@app/common';
import { parse as csvParse, CsvError } from 'csv-parse';
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export interface SourceRecord {
  record: unknown;
  where: string;
}

/**
 * Counts and hashes the raw upload as it streams through, and fails it past a size limit. Its
 * error reaches whoever iterates the records (a listener is attached at once, so an upload that
 * fails before anyone reads cannot crash the process).
 */
export class ByteMeter extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onLimit: () => ApiError,
  ) {
    super();
    this.on('error', () => undefined);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return done(this.onLimit());
    this.hash.update(chunk);
    done(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** CSV with a header row, quoted fields, and commas and newlines inside quotes (RFC 4180). */
export function csvRecords(input: Readable, onHeader: (columns: string[]) => void): AsyncGenerator<SourceRecord> {
  const parser = csvParse({
    bom: true,
    skip_empty_lines: true,
    info: true,
    columns: (header: string[]) => {
      const columns = header.map((h) => h.trim());
      onHeader(columns);
      return columns;
    },
  });
  // The records are iterated only after the dataset row exists: until then an error waits on the stream.
  parser.on('error', () => undefined);
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  return (async function* () {
    try {
      for await (const { record, info } of parser as AsyncIterable<{ record: unknown; info: { lines: number } }>) {
        yield { record, where: `line ${info.lines}` };
      }
    } catch (err) {
      if (err instanceof CsvError) throw csvError(err);
      throw err;
    }
  })();
}

function csvError(err: CsvError): ApiError {
  const e = err as CsvError & { lines?: number; record?: unknown[] };
  const line = e.lines !== undefined ? `line ${e.lines}` : 'the CSV';
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS':
      return ApiError.invalid('dataset_ragged', `${line}: ragged row: it has ${e.record?.length ?? 'a different number of'} fields, the header has another count`, undefined);
    case 'CSV_QUOTE_NOT_CLOSED':
      return ApiError.invalid('dataset_malformed', `${line}: a quoted field is never closed`);
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return ApiError.invalid('dataset_malformed', `${line}: unexpected character after a closing quote`);
    default:
      return ApiError.invalid('dataset_malformed', `${line}: malformed CSV (${err.message})`);
  }
}

/** Newline-delimited JSON: one object per line; blank lines are skipped. */
export async function* ndjsonRecords(input: Readable): AsyncGenerator<SourceRecord> {
  let n = 0;
  let rest = '';
  const decoder = new StringDecoder('utf8');
  const parseLine = (line: string): SourceRecord | null => {
    n++;
    if (line.trim() === '') return null;
    try {
      return { record: JSON.parse(line), where: `line ${n}` };
    } catch (err) {
      throw ApiError.invalid('dataset_malformed', `line ${n}: not valid JSON (${(err as Error).message})`);
    }
  };
  for await (const chunk of input) {
    const lines = (rest + decoder.write(chunk as Buffer)).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const rec = parseLine(line.replace(/\r$/, ''));
      if (rec) yield rec;
    }
  }
  const last = parseLine((rest + decoder.end()).replace(/\r$/, ''));
  if (last) yield last;
}

export async function* jsonRecords(records: unknown[]): AsyncGenerator<SourceRecord> {
  for (let i = 0; i < records.length; i++) yield { record: records[i], where: `records[${i}]` };
}
