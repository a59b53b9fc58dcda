import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { systemOwnAddressCheck } from './host-addresses.js';
import { blockedReason, type OwnAddressCheck, stripZone } from './special-addresses.js';

export { blockedReason, canonicalAddress, type OwnAddressCheck } from './special-addresses.js';

/**
 * The SSRF guard: may we POST to this URL? Run at registration (a refusal is a 400) and again before
 * every delivery, whose socket then connects to the address checked here, never to a second lookup
 * (DNS rebinding). Only http and https, no credentials in the URL, and every address the host resolves
 * to must be globally reachable (special-addresses.ts) and none may be this host's own or its gateway
 * (host-addresses.ts): one private address among public ones is a refusal. Operators name hosts that
 * skip the address check (WEBHOOK_ALLOWED_HOSTS), which is how tests reach a receiver on loopback.
 */
export type DestinationRefusedCode =
  | 'url_invalid'
  | 'scheme_not_allowed'
  | 'credentials_not_allowed'
  | 'address_not_allowed'
  | 'dns_failed';

export class DestinationRefused extends Error {
  override readonly name = 'DestinationRefused';
  constructor(
    readonly code: DestinationRefusedCode,
    message: string,
    readonly host?: string,
  ) {
    super(message);
  }
}

export interface ResolvedAddress {
  address: string;
  /** Ignored: the family is read from the address itself. */
  family?: number;
}
export type LookupFn = (host: string) => Promise<readonly ResolvedAddress[]>;

export interface DestinationOptions {
  /** Host names or IP literals (normalized by parseAllowedHosts) that skip the address check. */
  allowedHosts: ReadonlySet<string>;
  /** Resolves a host name to all its addresses; the default asks the system resolver. */
  lookup?: LookupFn;
  /** This host's own addresses and gateways; the default reads the machine's interfaces and routes. */
  ownAddresses?: OwnAddressCheck;
}

export interface Destination {
  url: URL;
  /** The address to connect to: checked, and the first the resolver gave. */
  address: string;
  family: 4 | 6;
}

export const defaultLookup: LookupFn = (host) => dns.lookup(host, { all: true, verbatim: true });

export async function checkDestination(rawUrl: string, options: DestinationOptions): Promise<Destination> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new DestinationRefused('url_invalid', 'webhook URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DestinationRefused('scheme_not_allowed', `webhook URL scheme ${url.protocol} is not allowed: use http or https`);
  }
  // The WHATWG parser has already lower-cased the host, turned IDNs into punycode and rewritten
  // decimal, octal and hex IPv4 forms (2130706433, 0177.0.0.1, 0x7f.1, 127.1) as dotted decimal.
  const host = bareHost(url.hostname);
  if (url.username !== '' || url.password !== '') {
    throw new DestinationRefused('credentials_not_allowed', `webhook URL for host ${host} must not carry a user name or password`, host);
  }
  const allowed = isAllowedHost(options.allowedHosts, host);
  const own = options.ownAddresses ?? systemOwnAddressCheck;

  const literalFamily = isIP(host);
  if (literalFamily === 4 || literalFamily === 6) {
    if (!allowed) {
      const blocked = blockedReason(host, own);
      if (blocked) throw new DestinationRefused('address_not_allowed', `host ${host} is ${blocked}`, host);
    }
    return { url, address: host, family: literalFamily };
  }

  let resolved: readonly ResolvedAddress[];
  try {
    resolved = await (options.lookup ?? defaultLookup)(host);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new DestinationRefused('dns_failed', `host ${host} does not resolve${typeof code === 'string' ? ` (${code})` : ''}`, host);
  }
  const addresses = resolved.map((r) => stripZone(r.address));
  if (addresses.length === 0) throw new DestinationRefused('dns_failed', `host ${host} resolves to no address`, host);
  for (const address of addresses) {
    if (isIP(address) === 0)
      throw new DestinationRefused('dns_failed', `host ${host} resolves to something that is not an IP address`, host);
    if (allowed) continue;
    const blocked = blockedReason(address, own);
    if (blocked) throw new DestinationRefused('address_not_allowed', `host ${host} resolves to ${address}, ${blocked}`, host);
  }
  const address = addresses[0];
  return { url, address, family: isIP(address) === 6 ? 6 : 4 };
}

/** `WEBHOOK_ALLOWED_HOSTS`: comma-separated host names or IP literals, normalized as URLs normalize them. */
export function parseAllowedHosts(text: string | undefined): ReadonlySet<string> {
  const hosts = new Set<string>();
  for (const item of (text ?? '').split(',')) {
    const h = item.trim();
    if (h !== '') hosts.add(normalizeHost(h));
  }
  return hosts;
}

function isAllowedHost(allowedHosts: ReadonlySet<string>, host: string): boolean {
  if (allowedHosts.size === 0) return false;
  if (allowedHosts.has(host)) return true;
  for (const h of allowedHosts) if (normalizeHost(h) === host) return true;
  return false;
}

/** A host as `new URL(...).hostname` spells it, without IPv6 brackets: `[::FFFF:127.0.0.1]` → `::ffff:7f00:1`. */
function normalizeHost(h: string): string {
  const bare = bareHost(h.trim().toLowerCase());
  try {
    return bareHost(new URL(`http://${isIP(bare) === 6 ? `[${bare}]` : bare}/`).hostname);
  } catch {
    return bare;
  }
}

function bareHost(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}
