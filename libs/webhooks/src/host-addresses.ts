import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { canonicalAddress, type OwnAddressCheck } from './special-addresses.js';

/**
 * This machine's own addresses (every interface but loopback, which its range refuses) and its default gateways: a webhook to one of them
 * reaches the service's own ports or the router in front of it, whatever range the address is in (a
 * cloud host's NIC may carry a public address). Read again when older than REFRESH_MS, since
 * interfaces come and go (DHCP, containers); reading them costs microseconds.
 */
const REFRESH_MS = 5_000;

export interface HostAddressSource {
  interfaces: () => NodeJS.Dict<ReturnType<typeof networkInterfaces>[string]>;
  /** Text of /proc/net/route and /proc/net/ipv6_route, or null where there is none (not Linux). */
  readRoutes: () => { v4: string | null; v6: string | null };
  now: () => number;
}

const systemSource: HostAddressSource = {
  interfaces: networkInterfaces,
  readRoutes: () => ({ v4: readOrNull('/proc/net/route'), v6: readOrNull('/proc/net/ipv6_route') }),
  now: Date.now,
};

/** Canonical address → why it is refused ("an address of this host (eth0)"). */
export function hostAddresses(source: HostAddressSource = systemSource): Map<string, string> {
  const found = new Map<string, string>();
  for (const [name, entries] of Object.entries(source.interfaces())) {
    for (const entry of entries ?? []) {
      if (entry.internal) continue; // loopback: its range already says what it is
      const canonical = canonicalAddress(entry.address);
      if (canonical && !found.has(canonical)) found.set(canonical, `an address of this host (interface ${name})`);
    }
  }
  const routes = source.readRoutes();
  for (const [gateway, iface] of defaultGateways(routes.v4, routes.v6)) {
    const canonical = canonicalAddress(gateway);
    if (canonical && !found.has(canonical)) found.set(canonical, `this host's default gateway (via ${iface})`);
  }
  return found;
}

/** A check over hostAddresses, read at most every REFRESH_MS. */
export function ownAddressCheck(source: HostAddressSource = systemSource): OwnAddressCheck {
  let readAt = -Infinity;
  let known = new Map<string, string>();
  return (canonical) => {
    const now = source.now();
    if (now - readAt >= REFRESH_MS) {
      known = hostAddresses(source);
      readAt = now;
    }
    return known.get(canonical) ?? null;
  };
}

export const systemOwnAddressCheck: OwnAddressCheck = ownAddressCheck();

/**
 * Default routes' gateways from the kernel's tables. /proc/net/route: `Iface Destination Gateway Flags …`,
 * addresses as little-endian hex, default route = destination 0 with the gateway flag (0x2).
 * /proc/net/ipv6_route: `dest destlen src srclen nexthop metric refcnt use flags iface`, big-endian hex.
 */
export function defaultGateways(v4: string | null, v6: string | null): Array<[address: string, iface: string]> {
  const out: Array<[string, string]> = [];
  for (const line of (v4 ?? '').split('\n').slice(1)) {
    const [iface, destination, gateway, flags] = line.trim().split(/\s+/);
    if (!iface || destination !== '00000000' || !/^[0-9A-Fa-f]{8}$/.test(gateway ?? '') || (parseInt(flags, 16) & 0x2) === 0) continue;
    const n = parseInt(gateway, 16);
    out.push([[n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.'), iface]);
  }
  for (const line of (v6 ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[0] !== '0'.repeat(32) || f[1] !== '00' || !/^[0-9a-f]{32}$/i.test(f[4]) || /^0+$/.test(f[4])) continue;
    out.push([f[4].match(/.{4}/g)!.join(':'), f[9]]);
  }
  return out;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
