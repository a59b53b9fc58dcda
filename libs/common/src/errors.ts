export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'rate_limit_error'
  | 'quota_exceeded_error'
  | 'idempotency_error'
  | 'api_error';

export interface ErrorBody {
  error: { type: ErrorType; code: string; message: string; param?: string };
}

/**
 * The one error the domain throws. The exception filter maps it to HTTP and API.md's error shape;
 * nothing else decides status codes.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { type: this.type, code: this.code, message: this.message };
    if (this.param !== undefined) error.param = this.param;
    return { error };
  }

  static fromBody(status: number, body: ErrorBody): ApiError {
    const { type, code, message, param } = body.error;
    return new ApiError(status, type, code, message, param);
  }

  static invalid(code: string, message: string, param?: string, status = 400): ApiError {
    return new ApiError(status, 'invalid_request_error', code, message, param);
  }

  static notFound(what: string, id: string, param = 'id'): ApiError {
    return new ApiError(404, 'invalid_request_error', 'resource_missing', `No such ${what}: '${id}'`, param);
  }

  static unauthenticated(code: string, message: string): ApiError {
    return new ApiError(401, 'authentication_error', code, message, undefined, { 'WWW-Authenticate': 'Bearer' });
  }

  static forbidden(code: string, message: string): ApiError {
    return new ApiError(403, 'permission_error', code, message);
  }

  static unavailable(code: string, message: string): ApiError {
    return new ApiError(503, 'api_error', code, message);
  }
}
