import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ZipEntry } from '../zip/zip-writer.js';
import { ImageFileError, imageKindOf, type ImageKind } from './image-file.js';

/**
 * A folder of class folders (the ImageFolder layout: `photos/cat/1.jpg`, `photos/dog/2.png`),
 * read as the entries of the archive an image dataset is uploaded as: `cat/1.jpg`, … Only PNG and
 * JPEG files directly inside a class folder go in, known by their first bytes, not their names.
 */
export interface ImageFolder {
  root: string;
  /** In archive order: by class, then by file name. */
  entries: ImageFile[];
  /** Images per class. */
  classes: Record<string, number>;
  /** What was left out, and why: dotfiles, files that are not PNG or JPEG, files outside a class folder. */
  skipped: SkippedFile[];
}

export interface ImageFile extends ZipEntry {
  /** Where it is on disk. */
  path: string;
  label: string;
  kind: ImageKind;
}

export interface SkippedFile {
  /** Relative to the root, `/`-separated. */
  name: string;
  reason: 'dotfile' | 'not_an_image' | 'outside_class_folder' | 'nested_folder' | 'symlinked_folder' | 'not_a_regular_file';
}

/** Reads a folder of class folders; refuses one with no class folder, or with a class folder that holds no image. */
export async function readImageFolder(root: string): Promise<ImageFolder> {
  const rootStat = await stat(root).catch((err: NodeJS.ErrnoException) => {
    throw new ImageFileError(
      err.code === 'ENOENT' ? 'not_found' : 'unreadable',
      root,
      err.code === 'ENOENT' ? `${root}: no such file or folder` : `${root}: ${err.message}`,
    );
  });
  if (!rootStat.isDirectory()) throw new ImageFileError('not_a_folder', root, `${root} is not a folder`);
  const skipped: SkippedFile[] = [];
  const entries: ImageFile[] = [];
  const classes: Record<string, number> = {};
  const empty: string[] = [];

  for (const top of await listSorted(root)) {
    if (top.name.startsWith('.')) {
      skipped.push({ name: top.name + (top.isDirectory() ? '/' : ''), reason: 'dotfile' });
      continue;
    }
    // A symlinked class folder is not followed (it could loop, or leave the folder).
    if (!top.isDirectory()) {
      const linked = top.isSymbolicLink() ? await stat(join(root, top.name)).catch(() => null) : null;
      skipped.push({
        name: top.name,
        reason: linked?.isDirectory()
          ? 'symlinked_folder'
          : top.isFile() || linked?.isFile()
            ? 'outside_class_folder'
            : 'not_a_regular_file',
      });
      continue;
    }
    const label = top.name;
    let count = 0;
    for (const f of await listSorted(join(root, label))) {
      const name = `${label}/${f.name}`;
      if (f.name.startsWith('.')) {
        skipped.push({ name: name + (f.isDirectory() ? '/' : ''), reason: 'dotfile' });
        continue;
      }
      if (f.isDirectory()) {
        skipped.push({ name: `${name}/`, reason: 'nested_folder' });
        continue;
      }
      const path = join(root, label, f.name);
      const info = await stat(path).catch(() => null); // a symlinked file is read as the file it points to
      if (!info?.isFile()) {
        skipped.push({ name, reason: info?.isDirectory() ? 'nested_folder' : 'not_a_regular_file' });
        continue;
      }
      const kind = imageKindOf(await headOf(path));
      if (!kind) {
        skipped.push({ name, reason: 'not_an_image' });
        continue;
      }
      entries.push({ name, path, label, kind, size: info.size, modified: info.mtime, read: () => createReadStream(path) });
      count++;
    }
    if (count === 0) empty.push(label);
    else classes[label] = count;
  }

  if (entries.length === 0) {
    throw new ImageFileError(
      'no_class_folders',
      root,
      `${root} has no class folders: put each class's images (PNG or JPEG) in a folder named after the class, e.g. ${join(basename(root), 'cat', '1.jpg')} and ${join(basename(root), 'dog', '2.png')}`,
    );
  }
  if (empty.length > 0) {
    throw new ImageFileError(
      'empty_class_folder',
      join(root, empty[0]),
      `${empty.map((e) => join(root, e)).join(', ')} ${empty.length === 1 ? 'holds' : 'hold'} no PNG or JPEG image: add images or remove the folder`,
    );
  }
  return { root, entries, classes, skipped };
}

/** Directory entries in a stable order (by code unit, as the archive and the dataset list them). */
async function listSorted(dir: string) {
  try {
    const list = await readdir(dir, { withFileTypes: true });
    return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw new ImageFileError('unreadable', dir, `cannot read ${dir}: ${(err as Error).message}`);
  }
}

async function headOf(path: string): Promise<Uint8Array> {
  const file = await open(path, 'r').catch((err: Error) => {
    throw new ImageFileError('unreadable', path, `cannot read ${path}: ${err.message}`);
  });
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await file.read(head, 0, 8, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

const REASONS: Record<SkippedFile['reason'], string> = {
  dotfile: 'a dotfile',
  not_an_image: 'not a PNG or JPEG',
  outside_class_folder: 'not in a class folder',
  nested_folder: 'a folder inside a class folder',
  symlinked_folder: 'a symlinked folder, not followed',
  not_a_regular_file: 'not a regular file',
};

/** A skipped file as people read it: `cat/notes.txt (not a PNG or JPEG)`. */
export function describeSkipped(s: SkippedFile): string {
  return `${s.name} (${REASONS[s.reason]})`;
}
