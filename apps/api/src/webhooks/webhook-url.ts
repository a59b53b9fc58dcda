import { ApiError } from '@app/common';
import { checkDestination, DestinationRefused } from '@app/webhooks';

/**
 * A tenant's webhook URL (an endpoint's `url`, a job's `webhook_url`) as it will be called, or a 400
 * naming why it cannot be: the SSRF guard that the worker runs again at each delivery, run here so
 * that the tenant sees the refusal instead of failed deliveries it cannot watch.
 */
export async function checkWebhookUrl(raw: string, allowedHosts: ReadonlySet<string>, param: string): Promise<string> {
  try {
    return (await checkDestination(raw, { allowedHosts })).url.toString();
  } catch (err) {
    if (err instanceof DestinationRefused)
      throw ApiError.invalid(err.code === 'address_not_allowed' ? 'url_not_allowed' : err.code, err.message, param);
    throw err;
  }
}
