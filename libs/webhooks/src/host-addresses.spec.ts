import { describe, expect, it } from '@jest/globals';
import { networkInterfaces } from 'node:os';
import { defaultGateways, hostAddresses, type HostAddressSource, ownAddressCheck, systemOwnAddressCheck } from './host-addresses.js';
import { canonicalAddress } from './special-addresses.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;
const ROUTE6 = `00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
`;

function source(over: Partial<HostAddressSource> = {}): HostAddressSource {
  const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false) =>
    ({ address, family, netmask: '', mac: '', internal, cidr: null }) as never;
  return {
    interfaces: () => ({
      lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
      eth0: [iface('203.0.113.5', 'IPv4'), iface('2606:4700::5', 'IPv6')],
    }),
    readRoutes: () => ({ v4: ROUTE, v6: ROUTE6 }),
    now: () => 0,
    ...over,
  };
}

describe("this host's own addresses", () => {
  it('reads the default gateways from the kernel route tables', () => {
    expect(defaultGateways(ROUTE, ROUTE6)).toEqual([
      ['192.0.2.1', 'eth0'],
      ['fe80:0000:0000:0000:0000:0000:0000:0001', 'eth0'],
    ]);
    expect(defaultGateways(null, null)).toEqual([]);
    expect(defaultGateways('garbage\nnot a route table', 'x y z')).toEqual([]);
  });

  it('knows every interface address and the gateways, by their canonical form', () => {
    const known = hostAddresses(source());
    expect(known.get('203.0.113.5')).toBe('an address of this host (interface eth0)');
    expect(known.get('2606:4700:0:0:0:0:0:5')).toBe('an address of this host (interface eth0)');
    expect(known.has('127.0.0.1')).toBe(false); // loopback is refused as a range, by its range's name
    expect(known.get('192.0.2.1')).toBe("this host's default gateway (via eth0)");
    expect(known.get('fe80:0:0:0:0:0:0:1')).toBe("this host's default gateway (via eth0)");
    // Where there is no route table (not Linux), the interfaces still count.
    expect(hostAddresses(source({ readRoutes: () => ({ v4: null, v6: null }) })).has('192.0.2.1')).toBe(false);
  });

  it('reads the interfaces again once its copy is older than five seconds', () => {
    let now = 0;
    let address = '93.184.215.14';
    const check = ownAddressCheck(source({ now: () => now, interfaces: () => ({ eth0: [{ address, family: 'IPv4' } as never] }) }));
    expect(check('93.184.215.14')).toMatch(/interface eth0/);
    address = '93.184.215.15';
    now = 4_000;
    expect(check('93.184.215.15')).toBeNull();
    now = 5_000;
    expect(check('93.184.215.15')).toMatch(/interface eth0/);
    expect(check('93.184.215.14')).toBeNull();
  });

  it("finds this machine's real interface addresses", () => {
    for (const entries of Object.values(networkInterfaces())) {
      for (const e of (entries ?? []).filter((x) => !x.internal))
        expect(systemOwnAddressCheck(canonicalAddress(e.address)!)).toMatch(/an address of this host \(interface /);
    }
  });
});
