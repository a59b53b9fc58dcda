/**
 * What went wrong, as a code the caller maps to a job error or an HTTP answer:
 * - `invalid_data`: the dataset cannot be trained on or evaluated (missing label, non-numeric feature…)
 * - `invalid_input`: prediction inputs do not fit the model's input schema
 * - `invalid_hyperparameters`: a hyperparameter is unknown or out of range
 * - `architecture_not_allowed`: a custom topology fails the checks (layer type, shapes, output)
 * - `too_many_parameters`: the model holds more parameters than `maxParameters`
 * - `invalid_model`: an uploaded TF.js model.json is malformed or its weights do not match
 * - `invalid_artifact`: bytes that are not an artifact of this library
 * - `canceled`: the AbortSignal fired
 * - `backend_unavailable`: the forced TF.js backend cannot load
 */
export type MlErrorCode =
  | 'invalid_data'
  | 'invalid_input'
  | 'invalid_hyperparameters'
  | 'architecture_not_allowed'
  | 'too_many_parameters'
  | 'invalid_model'
  | 'invalid_artifact'
  | 'canceled'
  | 'backend_unavailable';

/** Every error of libs/ml that the caller's input caused; anything else is a bug (a 5xx). */
export class MlError extends Error {
  override readonly name = 'MlError';

  constructor(
    readonly code: MlErrorCode,
    message: string,
    /** Each problem on its own, when there are several (the message joins them). */
    readonly details: string[] = [],
  ) {
    super(message);
  }

  /** One error listing every problem found, so that a caller fixes them in one round. */
  static list(code: MlErrorCode, what: string, problems: string[]): MlError {
    return new MlError(code, `${what}: ${problems.join('; ')}`, problems);
  }
}

export function isMlError(err: unknown): err is MlError {
  return err instanceof MlError;
}
