import { ApiError } from '@app/common';
import { parse as csvParse, CsvError } from 'csv-parse';
import { createHash } from 'node:crypto';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { jsonBodyProblem, MAX_JSON_DEPTH } from '../http/json-body.js';

export interface SourceRecord {
  record: unknown;
  where: string;
  /** The image's bytes, when the source has them already (a zip entry): not decoded again from the record's base64. */
  image?: Buffer;
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

/** An upload received whole into an unlinked temporary file (a zip is read from its end). */
export interface ReceivedFile {
  handle: FileHandle;
  size: number;
}

/**
 * Writes a body to a temporary file as it arrives, a chunk at a time (the body's own meter bounds
 * its size). The file is unlinked at once: the open handle keeps it until the caller closes it, and
 * a process that dies mid-upload leaves nothing on disk.
 */
export async function receiveFile(input: Readable): Promise<ReceivedFile> {
  const dir = await mkdtemp(join(tmpdir(), 'aiaas-archive-'));
  const handle = await open(join(dir, 'upload'), 'w+', 0o600);
  await rm(dir, { recursive: true, force: true });
  let size = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      await handle.write(chunk, 0, chunk.length, size);
      size += chunk.length;
    }
    return { handle, size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/** CSV with a header row, quoted fields, and commas and newlines inside quotes (RFC 4180). */
export function csvRecords(input: Readable, limits: RecordLimits, onHeader: (columns: string[]) => void): AsyncGenerator<SourceRecord> {
  const parser = csvParse({
    bom: true,
    // csv-parse counts characters; a record is refused as soon as it passes the limit, unparsed.
    max_record_size: limits.maxRecordBytes,
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
      if (err instanceof CsvError) throw csvError(err, limits);
      throw err;
    }
  })();
}

function csvError(err: CsvError, limits: RecordLimits): ApiError {
  const e = err as CsvError & { lines?: number; record?: unknown[] };
  const line = e.lines !== undefined ? `line ${e.lines}` : 'the CSV';
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS':
      return ApiError.invalid(
        'dataset_ragged',
        `${line}: ragged row: it has ${e.record?.length ?? 'a different number of'} fields, the header has another count`,
        undefined,
      );
    case 'CSV_MAX_RECORD_SIZE':
      return ApiError.invalid(
        'record_too_large',
        `${line}: a record longer than ${limits.maxRecordBytes} characters, the limit of one CSV record`,
        undefined,
        413,
      );
    case 'CSV_QUOTE_NOT_CLOSED':
      return ApiError.invalid('dataset_malformed', `${line}: a quoted field is never closed`);
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return ApiError.invalid('dataset_malformed', `${line}: unexpected character after a closing quote`);
    default:
      return ApiError.invalid('dataset_malformed', `${line}: malformed CSV (${err.message})`);
  }
}

/** Limits that keep one upload's parse linear in time and bounded in memory. */
export interface RecordLimits {
  /** Bytes of one NDJSON line or CSV record. */
  maxRecordBytes: number;
}

const NEWLINE = 0x0a;

/**
 * Newline-delimited JSON: one object per line; blank lines are skipped. Each chunk is scanned once
 * for newlines and a line's parts are joined once, so a long line costs linear time; a line past
 * `maxRecordBytes` is refused (413) as soon as it grows past it, before it is parsed or held.
 */
export async function* ndjsonRecords(input: Readable, limits: RecordLimits): AsyncGenerator<SourceRecord> {
  let n = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  const tooLong = () =>
    ApiError.invalid(
      'record_too_large',
      `line ${n + 1}: longer than ${limits.maxRecordBytes} bytes, the limit of one NDJSON line`,
      undefined,
      413,
    );
  const parseLine = (bytes: Buffer): SourceRecord | null => {
    n++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    const line = bytes.subarray(0, end);
    const problem = jsonBodyProblem(line);
    if (problem === 'too_deep')
      throw ApiError.invalid('dataset_malformed', `line ${n}: nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
    if (problem === 'nul') throw ApiError.invalid('dataset_invalid_characters', `line ${n}: contains U+0000, which cannot be stored`);
    const text = line.toString('utf8');
    if (text.trim() === '') return null;
    try {
      return { record: JSON.parse(text), where: `line ${n}` };
    } catch (err) {
      throw ApiError.invalid('dataset_malformed', `line ${n}: not valid JSON (${(err as Error).message})`);
    }
  };
  const take = (chunk: Buffer, from: number, to: number) => {
    if (to <= from) return;
    partBytes += to - from;
    if (partBytes > limits.maxRecordBytes) throw tooLong();
    parts.push(chunk.subarray(from, to));
  };
  const line = (): Buffer => {
    const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    return bytes;
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, from)) {
      take(chunk, from, nl);
      from = nl + 1;
      const rec = parseLine(line());
      if (rec) yield rec;
    }
    take(chunk, from, chunk.length);
  }
  const last = parseLine(line());
  if (last) yield last;
}

export async function* jsonRecords(records: unknown[]): AsyncGenerator<SourceRecord> {
  for (let i = 0; i < records.length; i++) yield { record: records[i], where: `records[${i}]` };
}
