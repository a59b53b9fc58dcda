import { readFile } from 'node:fs/promises';
import { UsageError } from '../context.js';

type Row = Record<string, string | number | null>;

/** The rows to predict from a JSON file or stdin (`-`): an array of rows, one row, or `{"inputs": [...]}`. */
export async function readInputs(input: string): Promise<Row[]> {
  let text: string;
  try {
    text = input === '-' ? await readStdin() : await readFile(input, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${input}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${input === '-' ? 'stdin' : input} is not JSON: ${(err as Error).message}`);
  }
  const rows = Array.isArray(parsed)
    ? parsed
    : parsed && typeof parsed === 'object' && Array.isArray((parsed as { inputs?: unknown }).inputs)
      ? (parsed as { inputs: unknown[] }).inputs
      : [parsed];
  if (rows.length === 0 || !rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) {
    throw new UsageError('the input must be a row object, an array of row objects, or {"inputs": [...]}');
  }
  return rows as Row[];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
