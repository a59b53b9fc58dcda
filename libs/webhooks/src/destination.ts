import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

/**
 * The SSRF guard: may we POST to this URL? Run at registration (a refusal is a 400) and again before
 * every delivery, whose socket then connects to the address checked here, never to a second lookup
 * (DNS rebinding). Only http and https, no credentials in the URL, and every address the host resolves
 * to must be public: one private address among public ones is a refusal. Operators name hosts that
 * skip the address check (WEBHOOK_ALLOWED_HOSTS), which is how tests reach a receiver on loopback.
 */
export type DestinationRefusedCode = 'url_invalid' | 'scheme_not_allowed' | 'credentials_not_allowed' | 'address_not_allowed' | 'dns_failed';

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

  const literalFamily = isIP(host);
  if (literalFamily === 4 || literalFamily === 6) {
    if (!allowed) {
      const blocked = blockedReason(host);
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
    if (isIP(address) === 0) throw new DestinationRefused('dns_failed', `host ${host} resolves to something that is not an IP address`, host);
    if (allowed) continue;
    const blocked = blockedReason(address);
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

function stripZone(address: string): string {
  const pct = address.indexOf('%');
  return pct < 0 ? address : address.slice(0, pct);
}

// ---- address ranges ------------------------------------------------------------------------------

interface Range4 {
  cidr: string;
  base: number;
  bits: number;
  label: string;
}
interface Range6 {
  cidr: string;
  base: number[];
  bits: number;
  label: string;
  /** Where an IPv4 address sits inside it (index of its first 16-bit group); that address is checked instead. */
  embedsV4At?: number;
}

const V4_RANGES: readonly Range4[] = (
  [
    ['0.0.0.0/8', 'a "this network" address'],
    ['10.0.0.0/8', 'a private address'],
    ['100.64.0.0/10', 'a carrier-grade NAT address'],
    ['127.0.0.0/8', 'a loopback address'],
    ['169.254.0.0/16', 'a link-local address'],
    ['172.16.0.0/12', 'a private address'],
    ['192.0.0.0/24', 'an IETF protocol-assignment address'],
    ['192.168.0.0/16', 'a private address'],
    ['198.18.0.0/15', 'a benchmarking address'],
    ['224.0.0.0/4', 'a multicast address'],
    ['255.255.255.255/32', 'the broadcast address'],
    ['240.0.0.0/4', 'a reserved address'],
  ] as const
).map(([cidr, label]) => {
  const [ip, bits] = cidr.split('/');
  return { cidr, base: parseV4(ip), bits: Number(bits), label };
});

const V6_RANGES: readonly Range6[] = (
  [
    ['::/128', 'the unspecified address'],
    ['::1/128', 'a loopback address'],
    ['::ffff:0:0/96', 'an IPv4-mapped address', 6],
    ['64:ff9b::/96', 'a NAT64 address', 6],
    ['64:ff9b:1::/48', 'a local-use NAT64 address'],
    ['2002::/16', 'a 6to4 address', 1],
    ['::/96', 'an IPv4-compatible address (deprecated)'],
    ['100::/64', 'a discard-only address'],
    ['2001::/32', 'a Teredo address'],
    ['fc00::/7', 'a unique-local address'],
    ['fe80::/10', 'a link-local address'],
    ['fec0::/10', 'a site-local address'],
    ['ff00::/8', 'a multicast address'],
  ] as const
).map(([cidr, label, embedsV4At]: readonly [string, string, number?]) => {
  const [ip, bits] = cidr.split('/');
  return { cidr, base: parseV6(ip), bits: Number(bits), label, embedsV4At };
});

/** Why an address may not be a webhook destination ("a private address (10.0.0.0/8)"), or null. */
export function blockedReason(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return blockedV4(parseV4(address));
  if (family !== 6) return 'not an IP address';
  const groups = parseV6(stripZone(address));
  for (const r of V6_RANGES) {
    if (!inV6(groups, r)) continue;
    if (r.embedsV4At === undefined) return `${r.label} (${r.cidr})`;
    const v4 = ((groups[r.embedsV4At] << 16) | groups[r.embedsV4At + 1]) >>> 0;
    const inner = blockedV4(v4);
    return inner ? `${r.label} (${r.cidr}) of ${formatV4(v4)}, ${inner}` : null;
  }
  // Only global unicast (2000::/3) is routable on the internet; anything else is refused.
  if (groups[0] >>> 13 !== 0b001) return 'not a global unicast address (outside 2000::/3)';
  return null;
}

function blockedV4(ip: number): string | null {
  for (const r of V4_RANGES) {
    if (r.bits === 0 || ip >>> (32 - r.bits) === r.base >>> (32 - r.bits)) return `${r.label} (${r.cidr})`;
  }
  return null;
}

function inV6(groups: readonly number[], r: Range6): boolean {
  for (let i = 0; i < 8; i++) {
    const bits = Math.min(16, Math.max(0, r.bits - 16 * i));
    if (bits === 0) return true;
    const mask = (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i] & mask) !== (r.base[i] & mask)) return false;
  }
  return true;
}

/** Dotted-decimal IPv4 (as net.isIP accepts it) to an unsigned 32-bit number. */
function parseV4(ip: string): number {
  return ip.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

function formatV4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

/** An IPv6 address (as net.isIP accepts it, `::` and a dotted IPv4 tail included) to eight 16-bit groups. */
function parseV6(ip: string): number[] {
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = parseV4(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const gap = text.indexOf('::');
  if (gap < 0) return toGroups(text);
  const head = toGroups(text.slice(0, gap));
  const rest = toGroups(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}
