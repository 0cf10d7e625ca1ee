/**
 * Where a DNS-01 record must be visible before the CA is told to look: at every authoritative
 * server of its zone, because the CA's resolver may ask any of them and a secondary that has not
 * transferred the change yet answers "no such record". The zone is the closest enclosing name
 * with NS records; each NS host's addresses are asked directly, without recursion, and only an
 * authoritative answer counts (a cache cannot stand in for the server).
 */
import { Resolver } from 'node:dns/promises';
import { type DnsServer, exchange, newId } from './providers/dns-client.js';

export { formatServer } from './providers/dns-client.js';

import { CLASS, decodeMessage, encodeMessage, rcodeName, readTxt, TYPE } from './providers/dns-wire.js';

export interface AuthoritativeLookup {
  /** Resolvers to look the NS records and their addresses up with (default: the system's). */
  lookupResolvers?: string[];
  /** The port the authoritative servers answer on (default 53; another for a test server). */
  port?: number;
}

export interface ZoneServers {
  zone: string;
  servers: DnsServer[];
}

const SKIP = new Set(['ENODATA', 'ENOTFOUND', 'EREFUSED', 'ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED']);

/** The zone enclosing `fqdn` and the addresses of its authoritative servers. */
export async function authoritativeServers(
  fqdn: string,
  lookup: AuthoritativeLookup = {},
): Promise<ZoneServers> {
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  if (lookup.lookupResolvers) resolver.setServers(lookup.lookupResolvers);
  const labels = fqdn.replace(/\.$/, '').split('.');
  // The record's own name may be a zone (a delegated _acme-challenge); a TLD never is ours.
  for (let i = 0; i < labels.length - 1; i++) {
    const zone = labels.slice(i).join('.');
    let hosts: string[];
    try {
      hosts = await resolver.resolveNs(zone);
    } catch (error) {
      if (SKIP.has((error as NodeJS.ErrnoException).code ?? '')) continue;
      throw error;
    }
    if (hosts.length === 0) continue;
    const addresses = new Set<string>();
    await Promise.all(
      hosts.map(async (host) => {
        for (const family of [resolver.resolve4(host), resolver.resolve6(host)]) {
          for (const address of await family.catch(() => [] as string[])) addresses.add(address);
        }
      }),
    );
    if (addresses.size === 0)
      throw new Error(`no address for the name servers of ${zone} (${hosts.join(', ')})`);
    const port = lookup.port ?? 53;
    return { zone, servers: [...addresses].sort().map((host) => ({ host, port })) };
  }
  throw new Error(`no zone with NS records encloses ${fqdn}`);
}

/** The TXT values at `fqdn` as `server` holds them; throws unless it answers with authority. */
export async function authoritativeTxt(server: DnsServer, fqdn: string): Promise<string[]> {
  const id = newId();
  const query = encodeMessage({
    id,
    flags: 0, // RD clear: what the server holds, not what it can find out
    questions: [{ name: fqdn, type: TYPE.TXT, class: CLASS.IN }],
    answers: [],
    authority: [],
    additional: [],
  });
  const answer = decodeMessage(
    await exchange(server, query, { transport: 'udp', timeoutMs: 1_000, tries: 2 }),
  );
  if (answer.rcode !== 0 && answer.rcode !== 3) throw new Error(rcodeName(answer.rcode));
  if (!answer.authoritative) throw new Error('answer without authority');
  const name = fqdn.replace(/\.$/, '').toLowerCase();
  return answer.answers.filter((r) => r.type === TYPE.TXT && r.name.toLowerCase() === name).map(readTxt);
}
