import { APP_CONFIG, type AppConfig } from '@app/config';
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList } from 'node:net';

/**
 * Who may read `GET /metrics` without the admin key: a scraper that sends `METRICS_TOKEN` as its
 * bearer token (compared in constant time), or one connecting from `METRICS_ALLOW_FROM`. Neither is
 * set by default, so the figures (routes, tenants' queue depths) are for the operator only.
 */
@Injectable()
export class ScraperAccess {
  private readonly tokenDigest: Buffer | null;
  private readonly networks: BlockList | null;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.tokenDigest = config.metricsToken === null ? null : digest(config.metricsToken);
    if (config.metricsAllowFrom.length === 0) {
      this.networks = null;
    } else {
      this.networks = new BlockList();
      for (const n of config.metricsAllowFrom) this.networks.addSubnet(n.address, n.prefix, n.family);
    }
  }

  allows(req: FastifyRequest): boolean {
    // The socket's peer, never a forwarded header (IPv4-mapped IPv6 peers match IPv4 networks).
    const peer = req.socket.remoteAddress;
    if (this.networks && peer && this.networks.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4')) return true;
    if (!this.tokenDigest) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Digests of equal length, so the comparison's time says nothing about the token.
    return match !== null && timingSafeEqual(digest(match[1]), this.tokenDigest);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
