import { describe, expect, it, jest } from '@jest/globals';
import { networkInterfaces } from 'node:os';
import { blockedReason, checkDestination, DestinationRefused, parseAllowedHosts, type LookupFn } from './destination.js';

const PUBLIC_V4 = '93.184.215.14';
const PUBLIC_V6 = '2606:2800:21f:cb07:6820:80da:af6b:8b2c';

/** A resolver that knows a few names; anything else does not exist. */
const lookup: LookupFn = async (host) => {
  const table: Record<string, string[]> = {
    'public.example': [PUBLIC_V4, PUBLIC_V6],
    'internal.example': ['10.1.2.3'],
    'mixed.example': [PUBLIC_V4, '192.168.0.7'],
    'mixed6.example': [PUBLIC_V6, 'fd12::1'],
    'metadata.example': ['169.254.169.254'],
    'rebind.example': ['127.0.0.1'],
    'doc.example': [PUBLIC_V4, '2001:db8::5'],
    'self.example': ['93.184.215.99'],
    'empty.example': [],
  };
  const addresses = table[host];
  if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const none = new Set<string>();
/** The tables below judge ranges only, whatever this machine's own addresses are (the tests of those come after). */
const notMine = () => null;

async function refusal(url: string, allowedHosts: ReadonlySet<string> = none): Promise<DestinationRefused> {
  try {
    await checkDestination(url, { allowedHosts, lookup, ownAddresses: notMine });
  } catch (err) {
    if (err instanceof DestinationRefused) return err;
    throw err;
  }
  throw new Error(`${url} was allowed`);
}

describe('the SSRF guard', () => {
  // [url, code, what the message says]
  const refused: Array<[string, string, RegExp]> = [
    [
      'http://[::ffff:127.0.0.1]',
      'address_not_allowed',
      /::ffff:7f00:1 is an IPv4-mapped address \(::ffff:0:0\/96\) of 127\.0\.0\.1, a loopback address \(127\.0\.0\.0\/8\)/,
    ],
    ['http://[::ffff:7f00:1]', 'address_not_allowed', /IPv4-mapped .* of 127\.0\.0\.1, a loopback address/],
    [
      'http://[::ffff:169.254.169.254]/',
      'address_not_allowed',
      /IPv4-mapped .* of 169\.254\.169\.254, a link-local address \(169\.254\.0\.0\/16\)/,
    ],
    ['http://169.254.169.254/latest/meta-data', 'address_not_allowed', /169\.254\.169\.254 is a link-local address \(169\.254\.0\.0\/16\)/],
    ['http://2130706433', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback address \(127\.0\.0\.0\/8\)/],
    ['http://0177.0.0.1', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback/],
    ['http://0x7f.1', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback/],
    ['http://0x7f000001:8080/x', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback/],
    ['http://127.1', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback/],
    ['http://%31%32%37.0.0.1/', 'address_not_allowed', /host 127\.0\.0\.1 is a loopback/],
    ['http://127.255.255.254', 'address_not_allowed', /a loopback address/],
    ['http://[::1]:3000/hook', 'address_not_allowed', /host ::1 is a loopback address \(::1\/128\)/],
    ['http://[::]', 'address_not_allowed', /the unspecified address \(::\/128\)/],
    ['http://[::7f00:1]', 'address_not_allowed', /IPv4-compatible address/],
    ['http://[fd00::1]', 'address_not_allowed', /a unique-local address \(fc00::\/7\)/],
    ['http://[fe80::1]', 'address_not_allowed', /a link-local address \(fe80::\/10\)/],
    ['http://[fec0::1]', 'address_not_allowed', /a site-local address/],
    ['http://[ff02::1]', 'address_not_allowed', /a multicast address \(ff00::\/8\)/],
    ['http://[64:ff9b::7f00:1]', 'address_not_allowed', /a NAT64 address \(64:ff9b::\/96\) of 127\.0\.0\.1/],
    ['http://[64:ff9b::10.0.0.1]', 'address_not_allowed', /NAT64 .* of 10\.0\.0\.1, a private address/],
    ['http://[2002:a9fe:a9fe::1]', 'address_not_allowed', /a 6to4 address \(2002::\/16\) of 169\.254\.169\.254/],
    ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]', 'address_not_allowed', /a Teredo address/],
    ['http://[100::1]', 'address_not_allowed', /discard-only/],
    ['http://[4000::1]', 'address_not_allowed', /not a global unicast address \(outside 2000::\/3\)/],
    ['http://100.64.0.1', 'address_not_allowed', /a carrier-grade NAT address \(100\.64\.0\.0\/10\)/],
    ['http://100.127.255.255', 'address_not_allowed', /carrier-grade NAT/],
    ['http://10.0.0.1', 'address_not_allowed', /a private address \(10\.0\.0\.0\/8\)/],
    ['http://172.16.0.1', 'address_not_allowed', /a private address \(172\.16\.0\.0\/12\)/],
    ['http://172.31.255.255', 'address_not_allowed', /172\.16\.0\.0\/12/],
    ['http://192.168.1.1', 'address_not_allowed', /a private address \(192\.168\.0\.0\/16\)/],
    ['http://0.0.0.0', 'address_not_allowed', /0\.0\.0\.0\/8/],
    ['http://0', 'address_not_allowed', /host 0\.0\.0\.0 is/],
    ['http://192.0.0.170', 'address_not_allowed', /192\.0\.0\.0\/24/],
    ['http://198.19.0.1', 'address_not_allowed', /a benchmarking address \(198\.18\.0\.0\/15\)/],
    ['http://224.0.0.251', 'address_not_allowed', /a multicast address \(224\.0\.0\.0\/4\)/],
    ['http://240.0.0.1', 'address_not_allowed', /a reserved address \(240\.0\.0\.0\/4\)/],
    ['http://255.255.255.255', 'address_not_allowed', /the broadcast address/],
    ['http://192.0.2.2:3950/', 'address_not_allowed', /host 192\.0\.2\.2 is a documentation address \(TEST-NET-1\) \(192\.0\.2\.0\/24\)/],
    ['http://198.51.100.1/', 'address_not_allowed', /a documentation address \(TEST-NET-2\) \(198\.51\.100\.0\/24\)/],
    ['http://203.0.113.1/', 'address_not_allowed', /a documentation address \(TEST-NET-3\) \(203\.0\.113\.0\/24\)/],
    ['http://192.88.99.1/', 'address_not_allowed', /a deprecated 6to4 relay anycast address \(192\.88\.99\.0\/24\)/],
    ['http://[2001:db8::1]/', 'address_not_allowed', /host 2001:db8::1 is a documentation address \(2001:db8::\/32\)/],
    ['http://[3fff::1]/', 'address_not_allowed', /a documentation address \(3fff::\/20\)/],
    ['http://[2001:2::1]/', 'address_not_allowed', /a benchmarking address \(2001:2::\/48\)/],
    ['http://[64:ff9b:1::1]/', 'address_not_allowed', /a local-use NAT64 address/],
    ['http://[::ffff:192.0.2.2]:3950/', 'address_not_allowed', /IPv4-mapped .* of 192\.0\.2\.2, a documentation address \(TEST-NET-1\)/],
    ['http://doc.example/', 'address_not_allowed', /host doc\.example resolves to 2001:db8::5, a documentation address \(2001:db8::\/32\)/],
    [
      'http://internal.example/hook',
      'address_not_allowed',
      /host internal\.example resolves to 10\.1\.2\.3, a private address \(10\.0\.0\.0\/8\)/,
    ],
    ['https://INTERNAL.Example./hook', 'dns_failed', /host internal\.example\. does not resolve \(ENOTFOUND\)/],
    ['http://mixed.example', 'address_not_allowed', /resolves to 192\.168\.0\.7, a private address/],
    ['http://mixed6.example', 'address_not_allowed', /resolves to fd12::1, a unique-local address/],
    ['http://metadata.example', 'address_not_allowed', /resolves to 169\.254\.169\.254, a link-local address/],
    ['http://nowhere.example', 'dns_failed', /host nowhere\.example does not resolve \(ENOTFOUND\)/],
    ['http://empty.example', 'dns_failed', /resolves to no address/],
    ['ftp://example.com', 'scheme_not_allowed', /scheme ftp: is not allowed/],
    ['file:///etc/passwd', 'scheme_not_allowed', /scheme file: is not allowed/],
    ['gopher://127.0.0.1:6379/_INFO', 'scheme_not_allowed', /gopher:/],
    ['javascript:alert(1)', 'scheme_not_allowed', /javascript:/],
    ['http://user:pass@example.com', 'credentials_not_allowed', /example\.com must not carry a user name or password/],
    ['https://token@public.example/', 'credentials_not_allowed', /public\.example/],
    ['not a url', 'url_invalid', /not a valid absolute URL/],
    ['/relative/path', 'url_invalid', /not a valid absolute URL/],
    ['http://', 'url_invalid', /not a valid/],
    ['http://1.2.3.4.5', 'url_invalid', /not a valid/],
    ['http://[::ffff:127.0.0.1', 'url_invalid', /not a valid/],
  ];

  it.each(refused)('refuses %s (%s)', async (url, code, message) => {
    const err = await refusal(url);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it('never echoes credentials from the URL', async () => {
    const err = await refusal('http://admin:hunter2@10.0.0.1/');
    expect(err.message).not.toContain('hunter2');
  });

  it('refuses localhost (by real resolution) unless it is allowed', async () => {
    const err = await checkDestination('http://localhost:9/hook', { allowedHosts: none }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DestinationRefused);
    expect((err as DestinationRefused).code).toBe('address_not_allowed');
    expect((err as DestinationRefused).message).toMatch(/host localhost resolves to (127\.0\.0\.1|::1), a loopback address/);

    const ok = await checkDestination('http://localhost:9/hook', { allowedHosts: parseAllowedHosts('127.0.0.1, LocalHost') });
    expect(['127.0.0.1', '::1']).toContain(ok.address);
  });

  it('allows public addresses and returns the address to connect to', async () => {
    await expect(checkDestination(`http://${PUBLIC_V4}/hook?a=1`, { allowedHosts: none })).resolves.toMatchObject({
      address: PUBLIC_V4,
      family: 4,
    });
    await expect(checkDestination(`https://[${PUBLIC_V6}]:8443/`, { allowedHosts: none })).resolves.toMatchObject({
      address: PUBLIC_V6,
      family: 6,
    });
    // An IPv4-mapped or 6to4 address is judged by the IPv4 address inside it.
    await expect(checkDestination('http://[::ffff:8.8.8.8]/', { allowedHosts: none })).resolves.toMatchObject({
      address: '::ffff:808:808',
      family: 6,
    });
    await expect(checkDestination('http://[2002:808:808::1]/', { allowedHosts: none })).resolves.toMatchObject({ family: 6 });
  });

  it('resolves host names, lower-cased, and connects to the first of their (all public) addresses', async () => {
    const spy = jest.fn(lookup);
    const d = await checkDestination('HTTPS://Public.EXAMPLE/Hook/Path?X=Y', { allowedHosts: none, lookup: spy });
    expect(spy).toHaveBeenCalledWith('public.example');
    expect(d).toMatchObject({ address: PUBLIC_V4, family: 4 });
    expect(d.url.href).toBe('https://public.example/Hook/Path?X=Y');
  });

  it('lets operators allow named hosts and literal IPs, matched exactly and case-insensitively', async () => {
    const allowed = parseAllowedHosts('127.0.0.1, Internal.Example ,[::1],, ::FFFF:127.0.0.2');
    expect([...allowed]).toEqual(['127.0.0.1', 'internal.example', '::1', '::ffff:7f00:2']);
    await expect(checkDestination('http://127.0.0.1:8080/hook', { allowedHosts: allowed })).resolves.toMatchObject({
      address: '127.0.0.1',
      family: 4,
    });
    // The URL parser's spelling of the same address matches too.
    await expect(checkDestination('http://2130706433/', { allowedHosts: allowed })).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(checkDestination('http://[::1]/', { allowedHosts: allowed })).resolves.toMatchObject({ address: '::1', family: 6 });
    await expect(checkDestination('http://[::ffff:127.0.0.2]/', { allowedHosts: allowed })).resolves.toMatchObject({
      address: '::ffff:7f00:2',
    });
    // Still resolved, so a delivery connects to a concrete address.
    await expect(checkDestination('http://INTERNAL.example/', { allowedHosts: allowed, lookup })).resolves.toMatchObject({
      address: '10.1.2.3',
    });
    // Exact names only: neither other loopback addresses nor subdomains.
    expect((await refusal('http://127.0.0.3/', allowed)).code).toBe('address_not_allowed');
    expect((await refusal('http://a.internal.example/', allowed)).code).toBe('dns_failed');
    expect((await refusal('http://metadata.example/', allowed)).code).toBe('address_not_allowed');
    // A hand-built set is matched case-insensitively too; schemes and credentials are still checked.
    await expect(
      checkDestination('http://localhost:1/', { allowedHosts: new Set(['LOCALHOST']), lookup: async () => [{ address: '127.0.0.1' }] }),
    ).resolves.toMatchObject({
      address: '127.0.0.1',
    });
    expect((await refusal('ftp://127.0.0.1/', allowed)).code).toBe('scheme_not_allowed');
    expect((await refusal('http://u:p@127.0.0.1/', allowed)).code).toBe('credentials_not_allowed');
  });

  it("refuses this host's own addresses and its gateway, whatever their range and spelling", async () => {
    // A host whose NIC carries a public address (as in clouds): the range check alone would allow it.
    const own = (a: string) =>
      a === '93.184.215.99'
        ? 'an address of this host (interface eth0)'
        : a === '93.184.215.1'
          ? "this host's default gateway (via eth0)"
          : null;
    const refuse = async (url: string) => {
      const err = await checkDestination(url, { allowedHosts: none, lookup, ownAddresses: own }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DestinationRefused);
      expect((err as DestinationRefused).code).toBe('address_not_allowed');
      return (err as DestinationRefused).message;
    };
    expect(await refuse('http://93.184.215.99:3950/')).toBe('host 93.184.215.99 is an address of this host (interface eth0)');
    expect(await refuse('http://[::ffff:93.184.215.99]:3950/')).toMatch(
      /IPv4-mapped address \(::ffff:0:0\/96\) of 93\.184\.215\.99, an address of this host/,
    );
    expect(await refuse('http://1572394851/')).toMatch(/host 93\.184\.215\.99 is an address of this host/); // decimal form
    expect(await refuse('http://self.example/')).toBe(
      'host self.example resolves to 93.184.215.99, an address of this host (interface eth0)',
    );
    expect(await refuse('http://93.184.215.1/')).toBe("host 93.184.215.1 is this host's default gateway (via eth0)");
    // Other public addresses, and the allow-list, are as before.
    await expect(checkDestination(`http://${PUBLIC_V4}/`, { allowedHosts: none, ownAddresses: own })).resolves.toMatchObject({
      address: PUBLIC_V4,
    });
    await expect(
      checkDestination('http://93.184.215.99/', { allowedHosts: parseAllowedHosts('93.184.215.99'), ownAddresses: own }),
    ).resolves.toMatchObject({ address: '93.184.215.99' });
  });

  it("refuses this machine's real interface addresses by default", async () => {
    for (const entries of Object.values(networkInterfaces())) {
      for (const e of entries ?? []) {
        if (e.family !== 'IPv4' || e.internal) continue;
        const err = await checkDestination(`http://${e.address}:3950/`, { allowedHosts: none }).catch((x: unknown) => x);
        expect((err as DestinationRefused).message).toMatch(/an address of this host \(interface /);
      }
    }
  });

  it('classifies addresses, zone ids included', () => {
    expect(blockedReason('fe80::1%eth0')).toBe('a link-local address (fe80::/10)');
    expect(blockedReason('::ffff:10.0.0.1')).toBe('an IPv4-mapped address (::ffff:0:0/96) of 10.0.0.1, a private address (10.0.0.0/8)');
    expect(blockedReason('1:2:3:4:5:6:7:8')).toMatch(/outside 2000::\/3/);
    expect(blockedReason('2001:4860:4860::8888')).toBeNull();
    expect(blockedReason('1.1.1.1')).toBeNull();
    expect(blockedReason('172.32.0.1')).toBeNull();
    expect(blockedReason('100.128.0.1')).toBeNull();
    expect(blockedReason('192.0.1.1')).toBeNull();
    expect(blockedReason('example.com')).toBe('not an IP address');
  });
});
