import { ApiError } from '@app/common';
import { isMlError } from '@app/ml';
import type { TenantPrincipal } from '../auth/principal.js';

/**
 * libs/ml's refusals as API errors: too many parameters is the tenant's `max_model_parameters`
 * quota (403); anything else it refuses is a 400 on `param`. Other errors pass through.
 */
export function mlErrorToApi(err: unknown, p: TenantPrincipal, param: string): unknown {
  if (!isMlError(err)) return err;
  if (err.code === 'too_many_parameters') {
    return new ApiError(
      403,
      'quota_exceeded_error',
      'max_model_parameters',
      `${err.message} (this tenant's max_model_parameters is ${p.quotas.max_model_parameters})`,
    );
  }
  return ApiError.invalid(err.code, err.message, param);
}
