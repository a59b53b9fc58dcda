import { describe, expect, it } from '@jest/globals';
import jpeg from 'jpeg-js';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { imageArchiveOf } from './image-archive.js';
import { ImageFileError, imageKindOf } from './image-file.js';
import { describeSkipped, readImageFolder } from './image-folder.js';

const png = (size = 4) =>
  pngjs.PNG.sync.write(Object.assign(new pngjs.PNG({ width: size, height: size }), { data: Buffer.alloc(size * size * 4, 200) }));
const jpg = (size = 8) => jpeg.encode({ width: size, height: size, data: Buffer.alloc(size * size * 4, 90) }, 80).data;

/** A folder from a map of relative paths to contents (a string is written as text). */
function folderOf(files: Record<string, Uint8Array | string>): string {
  const root = mkdtempSync(join(tmpdir(), 'aiaas-images-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

describe('imageKindOf', () => {
  it('knows PNG and JPEG by their first bytes, whatever the file is called', () => {
    expect(imageKindOf(png())).toBe('png');
    expect(imageKindOf(jpg())).toBe('jpeg');
    expect(imageKindOf(Buffer.from('GIF89a..'))).toBeNull();
    expect(imageKindOf(new Uint8Array(0))).toBeNull();
  });
});

describe('readImageFolder', () => {
  it('lists the images of each class folder in a stable order, labelled by their folder', async () => {
    const root = folderOf({ 'dog/b.png': png(), 'cat/2.jpg': jpg(), 'cat/10.jpg': jpg(), 'dog/a.JPEG': jpg(), 'cat/no-extension': png() });
    const folder = await readImageFolder(root);
    expect(folder.entries.map((e) => [e.name, e.label, e.kind])).toEqual([
      ['cat/10.jpg', 'cat', 'jpeg'],
      ['cat/2.jpg', 'cat', 'jpeg'],
      ['cat/no-extension', 'cat', 'png'],
      ['dog/a.JPEG', 'dog', 'jpeg'],
      ['dog/b.png', 'dog', 'png'],
    ]);
    expect(folder.classes).toEqual({ cat: 3, dog: 2 });
    expect(folder.entries[0].size).toBe(jpg().length);
    expect(folder.skipped).toEqual([]);
  });

  it('skips dotfiles, non-images, files outside class folders, nested folders and symlinked folders, and says why', async () => {
    const root = folderOf({
      '.DS_Store': 'x',
      'README.md': '# photos',
      '.git/config': '[core]',
      'cat/1.jpg': jpg(),
      'cat/._1.jpg': 'resource fork',
      'cat/notes.txt': 'not an image',
      'cat/fake.png': 'text called .png',
      'cat/sub/2.jpg': jpg(),
      'dog/1.png': png(),
    });
    symlinkSync(join(root, 'dog'), join(root, 'puppy'));
    symlinkSync(join(root, 'dog', '1.png'), join(root, 'cat', 'linked.png'));
    const folder = await readImageFolder(root);
    expect(folder.entries.map((e) => e.name)).toEqual(['cat/1.jpg', 'cat/linked.png', 'dog/1.png']);
    expect(folder.skipped.map(describeSkipped)).toEqual([
      '.DS_Store (a dotfile)',
      '.git/ (a dotfile)',
      'README.md (not in a class folder)',
      'cat/._1.jpg (a dotfile)',
      'cat/fake.png (not a PNG or JPEG)',
      'cat/notes.txt (not a PNG or JPEG)',
      'cat/sub/ (a folder inside a class folder)',
      'puppy (a symlinked folder, not followed)',
    ]);
  });

  it('refuses a folder with no class folders, and says how to lay one out', async () => {
    const flat = folderOf({ 'a.jpg': jpg(), 'b.png': png() });
    const err = (await readImageFolder(flat).catch((e: unknown) => e)) as ImageFileError;
    expect(err).toBeInstanceOf(ImageFileError);
    expect(err.code).toBe('no_class_folders');
    expect(err.message).toMatch(/has no class folders: put each class's images \(PNG or JPEG\) in a folder named after the class/);
    await expect(readImageFolder(folderOf({ 'cat/notes.txt': 'x' }))).rejects.toMatchObject({ code: 'no_class_folders' });
  });

  it('refuses a class folder with no image, naming it', async () => {
    const root = folderOf({ 'cat/1.jpg': jpg(), 'dog/notes.txt': 'x' });
    await expect(readImageFolder(root)).rejects.toMatchObject({
      code: 'empty_class_folder',
      message: `${join(root, 'dog')} holds no PNG or JPEG image: add images or remove the folder`,
    });
  });

  it('refuses a path that does not exist or is not a folder', async () => {
    await expect(readImageFolder('/nonexistent/photos')).rejects.toMatchObject({
      code: 'not_found',
      message: '/nonexistent/photos: no such file or folder',
    });
    const root = folderOf({ 'cat/1.jpg': jpg() });
    await expect(readImageFolder(join(root, 'cat', '1.jpg'))).rejects.toMatchObject({ code: 'not_a_folder' });
  });
});

describe('imageArchiveOf', () => {
  it('names a folder’s archive after the folder, a zip file’s after the file, and refuses anything else', async () => {
    const root = folderOf({
      'photos/cat/1.jpg': jpg(),
      'photos/dog/1.png': png(),
      'set.zip': Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0]),
      'table.csv': 'a,b\n1,2\n',
    });
    const folder = await imageArchiveOf(`${join(root, 'photos')}/`);
    expect([folder.kind, folder.name, folder.folder?.classes]).toEqual(['folder', 'photos', { cat: 1, dog: 1 }]);
    const zip = await imageArchiveOf(join(root, 'set.zip'));
    expect([zip.kind, zip.name, zip.length]).toEqual(['zip', 'set', 6]);
    await expect(imageArchiveOf(join(root, 'table.csv'))).rejects.toMatchObject({ code: 'not_a_zip' });
  });
});
