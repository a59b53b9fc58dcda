import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { writeZip, zipLength } from '../zip/zip-writer.js';
import { ImageFileError } from './image-file.js';
import { readImageFolder, type ImageFolder } from './image-folder.js';

/**
 * What an image dataset upload sends: a folder of class folders zipped as it is read, or a
 * `.zip` file as it is. `length` is exact before a byte is read; `open()` can be called again
 * for a retry, and reads the files afresh.
 */
export interface ImageArchive {
  /** The folder or file it comes from. */
  source: string;
  kind: 'folder' | 'zip';
  /** The dataset name it suggests: the folder's name, or the file's without `.zip`. */
  name: string;
  /** Bytes. */
  length: number;
  /** For a folder: its classes, entries and what was skipped. */
  folder?: ImageFolder;
  open(): AsyncIterable<Uint8Array>;
}

const ZIP_SIGNATURES = [
  [0x50, 0x4b, 0x03, 0x04], // a local file header
  [0x50, 0x4b, 0x05, 0x06], // the end record of an empty archive
];

/** An ImageArchive of a folder of class folders or of a `.zip` file; ImageFileError for anything else. */
export async function imageArchiveOf(path: string): Promise<ImageArchive> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new ImageFileError(
      err.code === 'ENOENT' ? 'not_found' : 'unreadable',
      path,
      err.code === 'ENOENT' ? `${path}: no such file or folder` : `cannot read ${path}: ${err.message}`,
    );
  });
  const name = basename(path.replace(/[\\/]+$/, ''));
  if (info.isDirectory()) {
    const folder = await readImageFolder(path);
    return { source: path, kind: 'folder', name, length: zipLength(folder.entries), folder, open: () => writeZip(folder.entries) };
  }
  if (!info.isFile() || !(await startsLikeZip(path))) {
    throw new ImageFileError('not_a_zip', path, `${path} is neither a folder of class folders nor a .zip file`);
  }
  return {
    source: path,
    kind: 'zip',
    name: extname(name).toLowerCase() === '.zip' ? name.slice(0, -4) : name,
    length: info.size,
    open: () => createReadStream(path),
  };
}

async function startsLikeZip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await file.read(head, 0, 4, 0);
    return bytesRead === 4 && ZIP_SIGNATURES.some((sig) => sig.every((b, i) => head[i] === b));
  } finally {
    await file.close();
  }
}
