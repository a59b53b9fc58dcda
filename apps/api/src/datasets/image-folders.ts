import { ApiError } from '@app/common';
import type { SourceRecord } from './dataset-sources.js';
import { type InflateLimits, inFileOrder, S_IFDIR, S_IFLNK, S_IFMT, type ZipArchive, type ZipEntry } from './zip-archive.js';

/** An image of a class folder: the entry, its label (the folder) and its path inside the archive. */
export interface FolderImage {
  entry: ZipEntry;
  label: string;
  file: string;
}

const bad = (code: string, message: string) => ApiError.invalid(code, message);

/** Compression methods read here: stored and deflate (what every zip tool writes by default). */
const METHODS: Record<number, string> = { 0: 'stored', 8: 'deflate' };
const OTHER_METHODS: Record<number, string> = {
  9: 'deflate64',
  12: 'bzip2',
  14: 'LZMA',
  93: 'zstd',
  95: 'xz',
  98: 'PPMd',
  99: 'AES encryption',
};

/**
 * The images of an ImageFolder archive (`cat/0001.jpg`, `dog/x.png`: the folder is the label),
 * checked from the central directory alone, before anything is inflated: paths that leave the
 * archive, symlinks, encrypted entries, unknown compression, files outside the class folders,
 * empty class folders, a single class, more images than the tenant may store. One top-level
 * folder that wraps the class folders (a zipped folder) is skipped; `__MACOSX/` and dotfiles
 * (`.DS_Store`) are ignored.
 */
export function classFolderImages(entries: ZipEntry[], maxRows: number): FolderImage[] {
  const files: { entry: ZipEntry; parts: string[] }[] = [];
  const folders = new Set<string>();
  const nonEmpty = new Set<string>();
  const kept: { entry: ZipEntry; parts: string[]; directory: boolean }[] = [];
  for (const entry of entries) {
    const name = entry.name;
    if (name.includes('\0')) throw bad('archive_path_invalid', `${JSON.stringify(name)}: a path with a NUL character`);
    if (/^([/\\]|[A-Za-z]:)/.test(name))
      throw bad('archive_path_invalid', `${name}: an absolute path; entries must be relative to the archive`);
    const parts = name.split(/[/\\]/);
    if (parts.includes('..')) throw bad('archive_path_invalid', `${name}: a path that leaves the archive ('..')`);
    if ((entry.mode & S_IFMT) === S_IFLNK) throw bad('archive_symlink', `${name}: a symbolic link; the archive must hold plain files`);
    const directory = name.endsWith('/') || name.endsWith('\\') || (entry.mode & S_IFMT) === S_IFDIR;
    const segments = parts.filter((s) => s !== '' && s !== '.');
    if (segments.length === 0) continue;
    if (segments[0] === '__MACOSX' || segments.some((s) => s.startsWith('.'))) continue;
    if (!directory) {
      if (entry.flags & 0x41) throw bad('archive_encrypted', `${name}: an encrypted entry; upload an archive without a password`);
      if (!(entry.method in METHODS)) {
        throw bad(
          'archive_method_unsupported',
          `${name}: compressed with method ${entry.method}${OTHER_METHODS[entry.method] ? ` (${OTHER_METHODS[entry.method]})` : ''}; only stored and deflate are read`,
        );
      }
    }
    kept.push({ entry, parts: segments, directory });
  }
  // A single folder holding everything, with class folders inside it: the folder that was zipped.
  const tops = new Set(kept.map((k) => k.parts[0]));
  const wrapped = tops.size === 1 && kept.some((k) => !k.directory && k.parts.length >= 3);
  for (const k of kept) {
    const parts = wrapped ? k.parts.slice(1) : k.parts;
    if (parts.length === 0) continue;
    if (k.directory) {
      folders.add(parts[0]);
      continue;
    }
    if (parts.length === 1)
      throw bad(
        'archive_layout',
        `${k.entry.name}: a file outside the class folders; put each image in a folder named after its class (cat/0001.jpg)`,
      );
    folders.add(parts[0]);
    nonEmpty.add(parts[0]);
    files.push({ entry: k.entry, parts });
  }
  const empty = [...folders].filter((f) => !nonEmpty.has(f)).sort();
  if (empty.length) throw bad('dataset_empty_class', `${wrapped ? `${kept[0].parts[0]}/` : ''}${empty[0]}/: an empty class folder`);
  if (files.length === 0)
    throw bad('dataset_empty', 'The archive holds no images: put each image in a folder named after its class (cat/0001.jpg)');
  if (nonEmpty.size < 2) {
    throw bad(
      'dataset_single_class',
      `The archive has a single class folder ('${[...nonEmpty][0]}'); image classification needs at least two`,
    );
  }
  if (files.length > maxRows) {
    throw new ApiError(
      413,
      'quota_exceeded_error',
      'max_dataset_rows',
      `The archive holds ${files.length} images, more than this tenant's max_dataset_rows (${maxRows})`,
    );
  }
  return files.map(({ entry, parts }) => ({ entry, label: parts[0], file: parts.join('/') }));
}

/** The images as dataset records `{file, image, label}`, inflated one at a time in file order; `where` is the entry's path. */
export async function* folderImageRecords(
  archive: ZipArchive,
  images: FolderImage[],
  limits: Omit<InflateLimits, 'remaining'> & { maxTotalBytes: number },
  onBytes: (inflated: number) => void,
): AsyncGenerator<SourceRecord> {
  const byEntry = new Map(images.map((i) => [i.entry, i]));
  let total = 0;
  let after = 0;
  for (const entry of inFileOrder(images.map((i) => i.entry))) {
    const { data, end } = await archive.read(entry, { ...limits, remaining: limits.maxTotalBytes - total }, after);
    after = end;
    total += data.length;
    onBytes(total);
    const { file, label } = byEntry.get(entry)!;
    yield { record: { file, image: data.toString('base64'), label }, where: entry.name, image: data };
  }
}
