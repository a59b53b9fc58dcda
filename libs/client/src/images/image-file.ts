import { readFile } from 'node:fs/promises';

/** The image formats the API takes. */
export type ImageKind = 'png' | 'jpeg';

/** A local folder or file that cannot be sent as images (a mistake on this side, found before any request). */
export class ImageFileError extends Error {
  override readonly name = 'ImageFileError';
  constructor(
    readonly code: 'not_found' | 'not_a_folder' | 'no_class_folders' | 'empty_class_folder' | 'unreadable' | 'not_an_image' | 'not_a_zip',
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** PNG or JPEG from a file's first bytes (at least 8); null for anything else. */
export function imageKindOf(head: Uint8Array): ImageKind | null {
  if (head.length >= 8 && PNG_SIGNATURE.every((b, i) => head[i] === b)) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  return null;
}

/** A PNG or JPEG file's bytes; anything else is refused here, naming the file, before a request is made. */
export async function readImageFile(path: string): Promise<{ bytes: Buffer; kind: ImageKind }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ImageFileError(
      e.code === 'ENOENT' ? 'not_found' : 'unreadable',
      path,
      e.code === 'ENOENT' ? `${path}: no such file` : `cannot read ${path}: ${e.message}`,
    );
  }
  const kind = imageKindOf(bytes);
  if (!kind) throw new ImageFileError('not_an_image', path, `${path} is not a PNG or JPEG image`);
  return { bytes, kind };
}
