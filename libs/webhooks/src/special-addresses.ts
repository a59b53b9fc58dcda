import { isIP } from 'node:net';

/**
 * Which IP addresses are not globally reachable, after the IANA IPv4 and IPv6 Special-Purpose Address
 * Registries (https://www.iana.org/assignments/iana-ipv4-special-registry and
 * https://www.iana.org/assignments/iana-ipv6-special-registry, RFC 6890): every block whose
 * "Globally Reachable" is False is refused, and so are the deprecated blocks and multicast. A block
 * nested in a refused one but globally reachable itself (192.0.0.9/32, 2001:1::1/128 …) is listed
 * as reachable: the longest matching prefix decides, as routing does. Where the registry lists a
 * False sub-block of a refused block (192.0.0.0/29 in 192.0.0.0/24, 0.0.0.0/32 in 0.0.0.0/8), the
 * parent's entry covers it and names the range.
 */
interface Block {
  cidr: string;
  /** The registry's name, as a message reads it; null for a globally reachable block. */
  label: string | null;
  /** IPv6 only: where an IPv4 address sits inside it (index of its first 16-bit group); that address is judged instead. */
  embedsV4At?: number;
}

const V4_BLOCKS: readonly Block[] = [
  { cidr: '0.0.0.0/8', label: 'a "this network" address' }, // RFC 791; 0.0.0.0/32 "this host" is inside
  { cidr: '10.0.0.0/8', label: 'a private address' }, // RFC 1918
  { cidr: '100.64.0.0/10', label: 'a carrier-grade NAT address' }, // RFC 6598, shared address space
  { cidr: '127.0.0.0/8', label: 'a loopback address' }, // RFC 1122
  { cidr: '169.254.0.0/16', label: 'a link-local address' }, // RFC 3927
  { cidr: '172.16.0.0/12', label: 'a private address' }, // RFC 1918
  // RFC 6890 IETF protocol assignments; inside: 192.0.0.0/29 (RFC 7335), 192.0.0.8/32 (RFC 7600), 192.0.0.170-171 (RFC 8880).
  { cidr: '192.0.0.0/24', label: 'an IETF protocol-assignment address' },
  { cidr: '192.0.0.9/32', label: null }, // Port Control Protocol anycast (RFC 7723): globally reachable
  { cidr: '192.0.0.10/32', label: null }, // TURN anycast (RFC 8155): globally reachable
  { cidr: '192.0.2.0/24', label: 'a documentation address (TEST-NET-1)' }, // RFC 5737
  { cidr: '192.88.99.0/24', label: 'a deprecated 6to4 relay anycast address' }, // RFC 7526; 192.88.99.2/32 (6a44, RFC 6751) inside
  { cidr: '192.168.0.0/16', label: 'a private address' }, // RFC 1918
  { cidr: '198.18.0.0/15', label: 'a benchmarking address' }, // RFC 2544
  { cidr: '198.51.100.0/24', label: 'a documentation address (TEST-NET-2)' }, // RFC 5737
  { cidr: '203.0.113.0/24', label: 'a documentation address (TEST-NET-3)' }, // RFC 5737
  { cidr: '224.0.0.0/4', label: 'a multicast address' }, // RFC 5771 (the multicast registry, not a unicast destination)
  { cidr: '240.0.0.0/4', label: 'a reserved address' }, // RFC 1112
  { cidr: '255.255.255.255/32', label: 'the broadcast address' }, // RFC 919
  // Globally reachable and outside every refused block, so not listed: 192.31.196.0/24 and 192.175.48.0/24 (AS112), 192.52.193.0/24 (AMT).
];

const V6_BLOCKS: readonly Block[] = [
  { cidr: '::/128', label: 'the unspecified address' }, // RFC 4291
  { cidr: '::1/128', label: 'a loopback address' }, // RFC 4291
  { cidr: '::ffff:0:0/96', label: 'an IPv4-mapped address', embedsV4At: 6 }, // RFC 4291: judged by the IPv4 address inside
  { cidr: '::/96', label: 'an IPv4-compatible address (deprecated)' }, // RFC 4291 §2.5.5.1
  { cidr: '64:ff9b::/96', label: 'a NAT64 address', embedsV4At: 6 }, // RFC 6052: reachable as its IPv4 address is
  { cidr: '64:ff9b:1::/48', label: 'a local-use NAT64 address' }, // RFC 8215
  { cidr: '100::/64', label: 'a discard-only address' }, // RFC 6666
  { cidr: '100:0:0:1::/64', label: 'a dummy address' }, // RFC 9780
  { cidr: '2001::/23', label: 'an IETF protocol-assignment address' }, // RFC 2928
  { cidr: '2001::/32', label: 'a Teredo address' }, // RFC 4380 (reachability N/A: tunnels to an IPv4 host we cannot judge)
  { cidr: '2001:1::1/128', label: null }, // Port Control Protocol anycast (RFC 7723)
  { cidr: '2001:1::2/128', label: null }, // TURN anycast (RFC 8155)
  { cidr: '2001:1::3/128', label: null }, // DNS-SD service registration protocol anycast (RFC 9665)
  { cidr: '2001:2::/48', label: 'a benchmarking address' }, // RFC 5180
  { cidr: '2001:3::/32', label: null }, // AMT (RFC 7450)
  { cidr: '2001:4:112::/48', label: null }, // AS112-v6 (RFC 7535)
  { cidr: '2001:10::/28', label: 'a deprecated ORCHID address' }, // RFC 4843
  { cidr: '2001:20::/28', label: null }, // ORCHIDv2 (RFC 7343)
  { cidr: '2001:30::/28', label: null }, // drone remote ID entity tags (RFC 9374)
  { cidr: '2001:db8::/32', label: 'a documentation address' }, // RFC 3849
  { cidr: '2002::/16', label: 'a 6to4 address', embedsV4At: 1 }, // RFC 3056: judged by the IPv4 address inside
  { cidr: '3fff::/20', label: 'a documentation address' }, // RFC 9637
  { cidr: '5f00::/16', label: 'a segment-routing SID address' }, // RFC 9602
  { cidr: 'fc00::/7', label: 'a unique-local address' }, // RFC 4193
  { cidr: 'fe80::/10', label: 'a link-local address' }, // RFC 4291
  { cidr: 'fec0::/10', label: 'a site-local address' }, // RFC 3879 (deprecated)
  { cidr: 'ff00::/8', label: 'a multicast address' }, // RFC 4291
  // 2620:4f:8000::/48 (AS112) is globally reachable and inside 2000::/3: nothing to list.
];

interface Range4 extends Block {
  base: number;
  bits: number;
}
interface Range6 extends Block {
  base: number[];
  bits: number;
}

const V4_RANGES: readonly Range4[] = V4_BLOCKS.map((b) => {
  const [ip, bits] = b.cidr.split('/');
  return { ...b, base: parseV4(ip), bits: Number(bits) };
});
const V6_RANGES: readonly Range6[] = V6_BLOCKS.map((b) => {
  const [ip, bits] = b.cidr.split('/');
  return { ...b, base: parseV6(ip), bits: Number(bits) };
});

/** Says why an address (canonical form, see canonicalAddress) may not be a destination, or null; the SSRF guard's own-address check. */
export type OwnAddressCheck = (canonical: string) => string | null;

/**
 * Why an address may not be a webhook destination ("a private address (10.0.0.0/8)"), or null. With
 * `own`, an address of this host is refused too, whatever its range (and so is one embedded in a mapped, NAT64 or 6to4 address).
 */
export function blockedReason(address: string, own?: OwnAddressCheck): string | null {
  const family = isIP(address);
  if (family === 4) return blockedV4(parseV4(address), own);
  if (family !== 6) return 'not an IP address';
  const groups = parseV6(stripZone(address));
  const r = longestMatch(V6_RANGES, (range) => inV6(groups, range));
  if (r?.embedsV4At !== undefined) {
    const v4 = ((groups[r.embedsV4At] << 16) | groups[r.embedsV4At + 1]) >>> 0;
    const inner = blockedV4(v4, own);
    return inner ? `${r.label} (${r.cidr}) of ${formatV4(v4)}, ${inner}` : null;
  }
  // Only global unicast (2000::/3) is routable on the internet; anything else is refused.
  const range = r
    ? r.label === null
      ? null
      : `${r.label} (${r.cidr})`
    : groups[0] >>> 13 !== 0b001
      ? 'not a global unicast address (outside 2000::/3)'
      : null;
  return both(own?.(formatV6(groups)) ?? null, range);
}

/** An address of this host may also be in a refused range: say both. */
function both(ownReason: string | null, range: string | null): string | null {
  return ownReason && range ? `${ownReason} and ${range}` : (ownReason ?? range);
}

/** One spelling per address, for comparing them: dotted IPv4, IPv6 as eight lower-case hex groups, an IPv4-mapped one as its IPv4. */
export function canonicalAddress(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return formatV4(parseV4(address));
  if (family !== 6) return null;
  const groups = parseV6(stripZone(address));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return formatV4(((groups[6] << 16) | groups[7]) >>> 0);
  return formatV6(groups);
}

function blockedV4(ip: number, own?: OwnAddressCheck): string | null {
  const r = longestMatch(V4_RANGES, (range) => ip >>> (32 - range.bits) === range.base >>> (32 - range.bits));
  return both(own?.(formatV4(ip)) ?? null, r?.label ? `${r.label} (${r.cidr})` : null);
}

function longestMatch<R extends { bits: number }>(ranges: readonly R[], contains: (r: R) => boolean): R | undefined {
  let best: R | undefined;
  for (const r of ranges) if ((best === undefined || r.bits > best.bits) && contains(r)) best = r;
  return best;
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

export function stripZone(address: string): string {
  const pct = address.indexOf('%');
  return pct < 0 ? address : address.slice(0, pct);
}

/** Dotted-decimal IPv4 (as net.isIP accepts it) to an unsigned 32-bit number. */
function parseV4(ip: string): number {
  return ip.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

function formatV4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

function formatV6(groups: readonly number[]): string {
  return groups.map((g) => g.toString(16)).join(':');
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
