import { ApiError } from '@app/common';
import type { DatasetRow } from '@app/db';
import type { ImageSummary } from './image-check.js';

export type Task = 'classification' | 'regression' | 'text-classification' | 'image-classification';

export interface ColumnSummary {
  name: string;
  type: 'number' | 'string' | 'text' | 'category' | 'image';
  role: 'feature' | 'label' | 'text' | 'image' | 'ignored';
  class_counts?: Record<string, number>;
  /** The image column: how many images, and their sizes (set by the upload's ImageChecker). */
  images?: ImageSummary;
}

/** The column that holds the images of an image-classification dataset (base64 of the PNG or JPEG file). */
export const IMAGE_FIELD = 'image';
/** Strict base64 (RFC 4648 §4, padding optional), once any `data:image/…;base64,` prefix is dropped. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:image\/[a-z0-9.+-]+;base64,/i;

/** A classification label with more distinct values than this is almost surely the wrong column. */
const MAX_CLASSES = 1_000;
/** A class name longer than this is text in the wrong column (and would be kept in every summary). */
const MAX_LABEL_LENGTH = 200;

const bad = (message: string, param?: string, code = 'dataset_invalid') => ApiError.invalid(code, message, param);

/**
 * Checks a dataset's records one at a time, as they stream in, and turns each into the row that
 * is stored (features as numbers, labels as strings or numbers). It keeps only per-column
 * counters, never the rows, so memory does not grow with the upload.
 */
export class DatasetValidator {
  private columns: string[] | null = null;
  private readonly numeric = new Map<string, boolean>();
  private readonly classes = new Map<string, number>();
  rows = 0;
  private readonly imageField: string | null;

  constructor(
    private readonly task: Task,
    private readonly label: string,
    private readonly textField: string | null,
    private readonly limits: { maxRows: number; maxColumns: number },
  ) {
    this.imageField = task === 'image-classification' ? IMAGE_FIELD : null;
  }

  /** Fixes the column set (a CSV header, or the first record's keys) and checks the named columns exist. */
  setColumns(columns: string[], where: string): void {
    if (columns.length > this.limits.maxColumns) {
      throw ApiError.invalid(
        'dataset_too_many_columns',
        `${where}: ${columns.length} columns, more than the limit of ${this.limits.maxColumns}`,
        'columns',
        413,
      );
    }
    const seen = new Set<string>();
    for (const c of columns) {
      if (c.trim() === '') throw bad(`${where}: a column has an empty name`, 'columns');
      if (seen.has(c)) throw bad(`${where}: column '${c}' appears twice`, 'columns');
      seen.add(c);
    }
    const list = columns.join(', ');
    if (!seen.has(this.label))
      throw bad(`The label column '${this.label}' is not in the data (columns: ${list})`, 'label', 'label_missing');
    if (this.task === 'text-classification' && !this.textField)
      throw bad('A text-classification dataset needs text_field, the column that holds the text', 'text_field');
    if (this.imageField) {
      if (!seen.has(this.imageField))
        throw bad(
          `The image column '${this.imageField}' is not in the data (columns: ${list}); send each image as base64 in '${this.imageField}'`,
          this.imageField,
          'image_missing',
        );
    } else if (this.textField) {
      if (!seen.has(this.textField)) throw bad(`The text column '${this.textField}' is not in the data (columns: ${list})`, 'text_field');
    } else if (columns.length < 2) {
      throw bad(`A ${this.task} dataset needs at least one feature column besides the label '${this.label}'`, 'columns');
    }
    this.columns = columns;
    for (const c of columns) this.numeric.set(c, true);
  }

  /** Validates one record; `where` says where it came from ("line 12", "records[3]") for messages. */
  accept(record: unknown, where: string): DatasetRow {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) throw bad(`${where}: a record must be an object`);
    const rec = record as Record<string, unknown>;
    const keys = Object.keys(rec);
    if (!this.columns) this.setColumns(keys, where);
    const columns = this.columns!;
    if (this.rows >= this.limits.maxRows) {
      throw new ApiError(
        413,
        'quota_exceeded_error',
        'max_dataset_rows',
        `The dataset has more than ${this.limits.maxRows} rows, this tenant's max_dataset_rows (${where})`,
      );
    }
    if (keys.length !== columns.length || keys.some((k) => !this.numeric.has(k))) {
      const missing = columns.filter((c) => !(c in rec)).slice(0, 10);
      const extra = keys.filter((k) => !this.numeric.has(k)).slice(0, 10);
      throw bad(
        `${where}: ragged record: ${missing.length ? `missing column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unknown column${extra.length > 1 ? 's' : ''} ${extra.map((c) => `'${c}'`).join(', ')}` : ''}`,
        missing[0] ?? extra[0],
        'dataset_ragged',
      );
    }
    const row: DatasetRow = {};
    for (const column of columns) row[column] = this.value(column, rec[column], where);
    this.rows++;
    return row;
  }

  /** Checks what only the whole dataset shows, and summarizes its columns. */
  finish(): ColumnSummary[] {
    if (this.rows === 0 || !this.columns) throw bad('The dataset is empty: it has no records', undefined, 'dataset_empty');
    if (this.task !== 'regression') {
      if (this.classes.size < 2) {
        throw bad(
          `The label column '${this.label}' has a single class ('${[...this.classes.keys()][0]}'); classification needs at least two`,
          'label',
          'dataset_single_class',
        );
      }
    }
    return this.columns.map((name): ColumnSummary => {
      if (name === this.label) {
        return this.task === 'regression'
          ? { name, type: 'number', role: 'label' }
          : {
              name,
              type: 'category',
              role: 'label',
              class_counts: Object.fromEntries([...this.classes].sort(([a], [b]) => a.localeCompare(b))),
            };
      }
      if (name === this.imageField) return { name, type: 'image', role: 'image' };
      if (this.textField || this.imageField) {
        return name === this.textField
          ? { name, type: 'text', role: 'text' }
          : { name, type: this.numeric.get(name) ? 'number' : 'string', role: 'ignored' };
      }
      return { name, type: 'number', role: 'feature' };
    });
  }

  private value(column: string, raw: unknown, where: string): string | number | null {
    const empty = raw === null || raw === undefined || (typeof raw === 'string' && raw.trim() === '');
    if (column === this.label) {
      if (empty) throw bad(`${where}: the label '${column}' is empty`, column, 'label_empty');
      if (this.task === 'regression') return this.number(column, raw, where);
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')
        throw bad(`${where}: the label '${column}' must be a string or a number`, column);
      if (typeof raw === 'string' && raw.length > MAX_LABEL_LENGTH)
        throw bad(`${where}: the label '${column}' is longer than ${MAX_LABEL_LENGTH} characters`, column);
      const label = String(raw).trim();
      const count = this.classes.get(label);
      if (count === undefined && this.classes.size >= MAX_CLASSES) {
        throw bad(
          `The label column '${column}' has more than ${MAX_CLASSES} distinct values; is it the right column?`,
          'label',
          'dataset_too_many_classes',
        );
      }
      this.classes.set(label, (count ?? 0) + 1);
      return label;
    }
    if (column === this.imageField) return this.base64(column, raw, where);
    if (this.textField || this.imageField) {
      if (column === this.textField) {
        if (empty) throw bad(`${where}: the text '${column}' is empty`, column, 'text_empty');
        if (typeof raw !== 'string' && typeof raw !== 'number') throw bad(`${where}: the text '${column}' must be a string`, column);
        return String(raw);
      }
      if (empty) return null;
      if (typeof raw === 'object')
        throw bad(`${where}: column '${column}' holds an object or array; values must be strings or numbers`, column);
      if (this.numeric.get(column) && !Number.isFinite(Number(raw))) this.numeric.set(column, false);
      return typeof raw === 'number' ? raw : String(raw);
    }
    if (empty) throw bad(`${where}: feature '${column}' is empty; tabular features must all be numbers`, column, 'feature_missing');
    return this.number(column, raw, where);
  }

  /** The image as stored: base64 of the file's bytes (a data: URL's prefix dropped); the bytes are checked by the ImageChecker. */
  private base64(column: string, raw: unknown, where: string): string {
    if (typeof raw !== 'string' || raw === '')
      throw bad(`${where}: the image '${column}' must be a base64 string of a PNG or JPEG file`, column, 'image_invalid');
    const text = raw.replace(DATA_URL, '');
    if (text.length % 4 === 1 || !BASE64.test(text))
      throw bad(`${where}: the image '${column}' is not valid base64`, column, 'image_invalid_base64');
    return text;
  }

  private number(column: string, raw: unknown, where: string): number {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    if (!Number.isFinite(n)) {
      const shown =
        typeof raw === 'object' && raw !== null ? (Array.isArray(raw) ? 'an array' : 'an object') : JSON.stringify(raw)?.slice(0, 40);
      throw bad(`${where}: column '${column}' must be a number, got ${shown}`, column, 'feature_not_numeric');
    }
    return n;
  }
}
