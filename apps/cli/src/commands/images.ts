import { describeSkipped, imageArchiveOf, imageKindOf, type Dataset, type ImagePrediction } from '@app/client';
import { open } from 'node:fs/promises';
import type { Context } from '../context.js';
import { table, type Column } from '../output.js';
import { formatBytes, TransferBar } from '../transfer-bar.js';

/** Skipped files named on stderr before the rest are counted. */
const SKIPPED_SHOWN = 10;

/**
 * `datasets upload PATH --task image-classification` for a folder of class folders (zipped as it
 * streams) or a `.zip` file (sent as it is): warnings about skipped files, then a bar of the bytes.
 */
export async function uploadImageDataset(ctx: Context, path: string, name: string | undefined): Promise<Dataset> {
  const archive = await imageArchiveOf(path);
  const skipped = archive.folder?.skipped ?? [];
  if (skipped.length > 0) {
    const shown = skipped.slice(0, SKIPPED_SHOWN).map((s) => `  ${describeSkipped(s)}`);
    const more = skipped.length > SKIPPED_SHOWN ? [`  … and ${skipped.length - SKIPPED_SHOWN} more`] : [];
    process.stderr.write(
      `${[`warning: skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} of ${path}:`, ...shown, ...more].join('\n')}\n`,
    );
  }
  const bar = TransferBar.forTerminal('uploading', ctx.json);
  if (archive.folder && process.stderr.isTTY && !ctx.json) {
    const classes = Object.entries(archive.folder.classes).map(([label, n]) => `${label} ${n}`);
    process.stderr.write(
      `${archive.folder.entries.length} images in ${classes.length} classes (${classes.join(', ')}), ${formatBytes(archive.length)} as a zip\n`,
    );
  }
  try {
    return await ctx.client.datasets.uploadImages(archive, { name: name ?? archive.name, onProgress: bar.onUpload });
  } finally {
    bar.stop();
  }
}

/** The first path that is not a PNG or JPEG file (by its first bytes) and why, or null: `predict` sends such files as images. */
export async function firstNonImage(paths: string[]): Promise<{ path: string; why: string } | null> {
  for (const path of paths) {
    if (path === '-') return { path, why: 'stdin' };
    const file = await open(path, 'r').catch(() => null);
    if (!file) return { path, why: 'cannot be read' };
    try {
      const head = Buffer.alloc(8);
      const { bytesRead } = await file.read(head, 0, 8, 0);
      if (!imageKindOf(head.subarray(0, bytesRead))) return { path, why: 'is not a PNG or JPEG image' };
    } finally {
      await file.close();
    }
  }
  return null;
}

/** `predict --model M a.jpg b.png`: one line per file (file, label, top probability, version). */
export async function predictImageFiles(
  ctx: Context,
  files: string[],
  opts: { model: string; version?: number; alias?: string; explain?: boolean },
): Promise<void> {
  const predictions = await ctx.client.models.predictImages(opts.model, files, {
    version: opts.version,
    alias: opts.alias,
    explain: opts.explain,
  });
  ctx.out.result({ predictions }, ({ predictions: list }) =>
    table(list, [
      ['file', (p: ImagePrediction) => p.file],
      ['label', (p) => p.label],
      ['probability', (p) => p.probabilities[p.label]],
      ['version', (p) => p.version],
      ...(opts.explain ? [saliencyColumn] : []),
    ]),
  );
}

const saliencyColumn: Column<ImagePrediction> = [
  'saliency',
  (p) => (p.explanation ? `${p.explanation.width}×${p.explanation.height}` : ''),
];
