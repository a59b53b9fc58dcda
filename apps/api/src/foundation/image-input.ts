import { ApiError } from '@app/common';
import { foundationModel, imageHeader, type ImageInputLimits } from '@app/ml';

const DATA_URL = /^data:image\/(?:png|jpe?g);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The platform's limits on an image sent for prediction: those of its image foundation models (bytes, declared pixels). */
export const IMAGE_INPUT_LIMITS = foundationModel('mobilenet-v2')!.input as ImageInputLimits;

/**
 * One image input, checked for encoding, size, format and declared pixels from its header (nothing decoded here: a
 * 50,000 × 50,000 PNG of a few bytes is refused before any pixel exists). Returns the bare base64 (a `data:` prefix
 * and whitespace removed). A problem is a 400 (413 when too large) naming `where`.
 */
export function checkImageInput(image: unknown, where: string, limits: ImageInputLimits = IMAGE_INPUT_LIMITS): string {
  if (typeof image !== 'string' || image === '')
    throw ApiError.invalid('image_invalid', `${where}: an image must be a base64 string (PNG or JPEG, or a data: URL)`, where);
  const b64 = image.replace(DATA_URL, '').replace(/\s+/g, '');
  if (!BASE64.test(b64) || b64.length % 4 === 1) throw ApiError.invalid('image_invalid', `${where}: not base64`, where);
  if ((b64.length * 3) / 4 > limits.max_bytes + 3)
    throw ApiError.invalid('image_too_large', `${where}: more than ${limits.max_bytes} bytes`, where, 413);
  const header = imageHeader(Buffer.from(b64, 'base64'));
  if (!header) throw ApiError.invalid('image_invalid', `${where}: not a PNG or JPEG image`, where);
  if (header.width === 0 || header.height === 0)
    throw ApiError.invalid('image_invalid', `${where}: the image has no pixels (${header.width}×${header.height})`, where);
  if (header.width * header.height > limits.max_pixels) {
    throw ApiError.invalid(
      'image_too_large',
      `${where}: ${header.width}×${header.height} pixels, more than the limit of ${limits.max_pixels}`,
      where,
      413,
    );
  }
  return b64;
}
