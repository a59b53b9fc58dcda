import { ApiError } from '@app/common';
import { decodeImage, type ImageInputLimits, imageHeader, isInputError } from '@app/ml';

export interface ImageLimits {
  /** Encoded bytes of one image. */
  maxBytes: number;
  /** width × height, refused from the header before any pixel is allocated. */
  maxPixels: number;
}

/** What the dataset answer says of its image column. */
export interface ImageSummary {
  count: number;
  min_width: number;
  max_width: number;
  min_height: number;
  max_height: number;
}

/**
 * Checks every image of an upload as it streams in: PNG or JPEG by its header, within the pixel
 * limit by its header (a 50,000 × 50,000 PNG of a few hundred bytes allocates nothing), then
 * decoded whole, so that a truncated or corrupt file is refused at upload rather than at training.
 * Keeps only the counters of the summary.
 */
export class ImageChecker {
  private readonly decodeLimits: ImageInputLimits;
  private readonly summary: ImageSummary = { count: 0, min_width: 0, max_width: 0, min_height: 0, max_height: 0 };

  constructor(private readonly limits: ImageLimits) {
    this.decodeLimits = { type: 'image', width: 0, height: 0, max_inputs: 1, max_bytes: limits.maxBytes, max_pixels: limits.maxPixels };
  }

  async check(bytes: Uint8Array, where: string): Promise<void> {
    if (bytes.length === 0) throw ApiError.invalid('image_invalid', `${where}: an empty file, not an image`);
    if (bytes.length > this.limits.maxBytes) {
      throw ApiError.invalid(
        'image_too_large',
        `${where}: ${bytes.length} bytes, more than the limit of one image (${this.limits.maxBytes}, DATASET_IMAGE_MAX_BYTES)`,
        undefined,
        413,
      );
    }
    const header = imageHeader(bytes);
    if (!header) throw ApiError.invalid('image_invalid', `${where}: not a PNG or JPEG image`);
    const { width, height } = header;
    if (width === 0 || height === 0) throw ApiError.invalid('image_invalid', `${where}: declares no pixels (${width}×${height})`);
    if (width * height > this.limits.maxPixels) {
      throw ApiError.invalid(
        'image_too_many_pixels',
        `${where}: declares ${width}×${height} pixels, more than the limit of ${this.limits.maxPixels} (DATASET_IMAGE_MAX_PIXELS)`,
      );
    }
    let decoded: { width: number; height: number };
    try {
      decoded = await decodeImage(bytes, 0, this.decodeLimits);
    } catch (err) {
      if (!isInputError(err)) throw err;
      throw ApiError.invalid('image_undecodable', `${where}: ${err.message.replace(/^input\[0\] /, '')} (truncated or corrupt)`);
    }
    this.add(decoded.width, decoded.height);
  }

  /** The counters, for the dataset answer's image column. */
  result(): ImageSummary {
    return { ...this.summary };
  }

  private add(width: number, height: number): void {
    const s = this.summary;
    if (s.count === 0) {
      Object.assign(s, { min_width: width, max_width: width, min_height: height, max_height: height });
    } else {
      s.min_width = Math.min(s.min_width, width);
      s.max_width = Math.max(s.max_width, width);
      s.min_height = Math.min(s.min_height, height);
      s.max_height = Math.max(s.max_height, height);
    }
    s.count++;
  }
}
