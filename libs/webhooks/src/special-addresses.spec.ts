import { describe, expect, it } from '@jest/globals';
import { blockedReason, canonicalAddress } from './special-addresses.js';

describe('the special-purpose address tables (IANA registries)', () => {
  // Every block of the IPv4 and IPv6 registries whose "Globally Reachable" is False, by an address inside it.
  const refused: Array<[string, RegExp]> = [
    ['0.0.0.0', /"this network" address \(0\.0\.0\.0\/8\)/],
    ['10.255.255.255', /a private address \(10\.0\.0\.0\/8\)/],
    ['100.64.0.1', /carrier-grade NAT address \(100\.64\.0\.0\/10\)/],
    ['127.0.0.1', /loopback address \(127\.0\.0\.0\/8\)/],
    ['169.254.169.254', /link-local address \(169\.254\.0\.0\/16\)/],
    ['172.20.0.1', /private address \(172\.16\.0\.0\/12\)/],
    ['192.0.0.1', /IETF protocol-assignment address \(192\.0\.0\.0\/24\)/],
    ['192.0.0.8', /192\.0\.0\.0\/24/],
    ['192.0.0.171', /192\.0\.0\.0\/24/],
    ['192.0.2.2', /a documentation address \(TEST-NET-1\) \(192\.0\.2\.0\/24\)/],
    ['192.88.99.1', /deprecated 6to4 relay anycast address \(192\.88\.99\.0\/24\)/],
    ['192.88.99.2', /192\.88\.99\.0\/24/],
    ['192.168.0.1', /private address \(192\.168\.0\.0\/16\)/],
    ['198.18.0.1', /benchmarking address \(198\.18\.0\.0\/15\)/],
    ['198.51.100.7', /documentation address \(TEST-NET-2\) \(198\.51\.100\.0\/24\)/],
    ['203.0.113.9', /documentation address \(TEST-NET-3\) \(203\.0\.113\.0\/24\)/],
    ['239.255.255.250', /multicast address \(224\.0\.0\.0\/4\)/],
    ['240.0.0.1', /reserved address \(240\.0\.0\.0\/4\)/],
    ['255.255.255.255', /the broadcast address \(255\.255\.255\.255\/32\)/],
    ['::', /unspecified address \(::\/128\)/],
    ['::1', /loopback address \(::1\/128\)/],
    ['::ffff:192.0.2.2', /IPv4-mapped address \(::ffff:0:0\/96\) of 192\.0\.2\.2, a documentation address \(TEST-NET-1\)/],
    ['::ffff:cb00:7101', /IPv4-mapped .* of 203\.0\.113\.1, a documentation address \(TEST-NET-3\)/],
    ['64:ff9b::198.51.100.1', /NAT64 address \(64:ff9b::\/96\) of 198\.51\.100\.1, a documentation address/],
    ['64:ff9b:1::1', /local-use NAT64 address \(64:ff9b:1::\/48\)/],
    ['100::1', /discard-only address \(100::\/64\)/],
    ['100:0:0:1::1', /dummy address \(100:0:0:1::\/64\)/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo address \(2001::\/32\)/],
    ['2001:1::4', /IETF protocol-assignment address \(2001::\/23\)/],
    ['2001:2::1', /benchmarking address \(2001:2::\/48\)/],
    ['2001:10::1', /deprecated ORCHID address \(2001:10::\/28\)/],
    ['2001:100::1', /IETF protocol-assignment address \(2001::\/23\)/],
    ['2001:1ff:ffff::1', /2001::\/23/],
    ['2001:db8::1', /documentation address \(2001:db8::\/32\)/],
    ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', /2001:db8::\/32/],
    ['2002:c000:0202::1', /6to4 address \(2002::\/16\) of 192\.0\.2\.2, a documentation address/],
    ['2002:c058:6301::1', /6to4 .* of 192\.88\.99\.1, a deprecated 6to4 relay/],
    ['3fff::1', /documentation address \(3fff::\/20\)/],
    ['3fff:fff:ffff::1', /3fff::\/20/],
    ['5f00::1', /segment-routing SID address \(5f00::\/16\)/],
    ['fc00::1', /unique-local address \(fc00::\/7\)/],
    ['fd00::2', /unique-local address \(fc00::\/7\)/],
    ['fe80::fc:ff:fe00:1', /link-local address \(fe80::\/10\)/],
    ['fec0::1', /site-local address \(fec0::\/10\)/],
    ['ff02::1', /multicast address \(ff00::\/8\)/],
    ['4000::1', /outside 2000::\/3/],
  ];
  it.each(refused)('refuses %s', (address, reason) => {
    expect(blockedReason(address)).toMatch(reason);
  });

  // Globally reachable: public unicast, and the reachable blocks nested in refused ones.
  const reachable = [
    '1.1.1.1',
    '8.8.8.8',
    '192.0.0.9',
    '192.0.0.10',
    '192.0.1.1',
    '192.0.3.1',
    '192.31.196.1',
    '192.52.193.1',
    '192.88.98.255',
    '192.88.100.1',
    '192.175.48.1',
    '198.17.255.255',
    '198.20.0.1',
    '198.51.99.255',
    '198.51.101.0',
    '203.0.112.255',
    '203.0.114.0',
    '223.255.255.255',
    '2001:1::1',
    '2001:1::2',
    '2001:1::3',
    '2001:3::1',
    '2001:4:112::1',
    '2001:20::1',
    '2001:30::1',
    '2001:200::1',
    '2001:db9::1',
    '2001:db7::1',
    '2620:4f:8000::1',
    '3fff:1000::1',
    '2606:4700::1111',
    '64:ff9b::8.8.8.8',
    '::ffff:1.1.1.1',
    '2002:808:808::1',
  ];
  it.each(reachable)('allows %s', (address) => {
    expect(blockedReason(address)).toBeNull();
  });

  it('judges an address embedded in a mapped, NAT64 or 6to4 address by the same own-address check', () => {
    const own = (a: string) => (a === '93.184.215.14' ? 'an address of this host (interface eth0)' : null);
    expect(blockedReason('93.184.215.14', own)).toBe('an address of this host (interface eth0)');
    expect(blockedReason('::ffff:93.184.215.14', own)).toBe(
      'an IPv4-mapped address (::ffff:0:0/96) of 93.184.215.14, an address of this host (interface eth0)',
    );
    expect(blockedReason('64:ff9b::5db8:d70e', own)).toMatch(/NAT64 .* of 93\.184\.215\.14, an address of this host/);
    expect(blockedReason('2002:5db8:d70e::1', own)).toMatch(/6to4 .* of 93\.184\.215\.14, an address of this host/);
    // An address of this host in a refused range: both are named.
    expect(blockedReason('10.0.0.1', (a) => (a === '10.0.0.1' ? 'mine' : null))).toBe('mine and a private address (10.0.0.0/8)');
    expect(blockedReason('fd00::2', (a) => (a === 'fd00:0:0:0:0:0:0:2' ? 'mine' : null))).toBe(
      'mine and a unique-local address (fc00::/7)',
    );
  });

  it('spells each address one way', () => {
    expect(canonicalAddress('192.0.2.2')).toBe('192.0.2.2');
    expect(canonicalAddress('::ffff:192.0.2.2')).toBe('192.0.2.2');
    expect(canonicalAddress('::FFFF:c000:0202')).toBe('192.0.2.2');
    expect(canonicalAddress('2001:DB8::1')).toBe('2001:db8:0:0:0:0:0:1');
    expect(canonicalAddress('fe80::1%eth0')).toBe('fe80:0:0:0:0:0:0:1');
    expect(canonicalAddress('host.example')).toBeNull();
  });
});
