/** Input `index` of an embedding or prediction request cannot be used (empty text, an undecodable or oversized image). */
export class InputError extends Error {
  override readonly name = 'InputError';

  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
  }
}

export function isInputError(err: unknown): err is InputError {
  return err instanceof InputError || (err instanceof Error && err.name === 'InputError' && typeof (err as InputError).index === 'number');
}
