/**
 * A DnsProvider for any DNS server that accepts dynamic updates (RFC 2136) signed with a TSIG key
 * (RFC 8945): BIND, Knot, PowerDNS, Windows DNS with GSS off, and most appliances. It adds and
 * removes exactly one TXT value per call, so a wildcard and its base name can be validated at the
 * same time at the same `_acme-challenge` name.
 *
 * Every request is signed and every answer's signature is checked: an answer that is not signed
 * with the key (a spoofed "NOERROR" on the path) is never taken as success.
 *
 * BIND, for a zone `example.com` and a key limited to TXT records:
 *
 *   key "certkeeper." { algorithm hmac-sha256; secret "<tsig-keygen output>"; };
 *   zone "example.com" { type primary; file "..."; update-policy { grant certkeeper. zonesub TXT; }; };
 */
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import type { DnsProvider } from '../dns-01.js';
import {
  type DnsServer,
  type DnsTransport,
  exchange,
  formatServer,
  newId,
  parseServer,
} from './dns-client.js';
import {
  CLASS,
  canonicalName,
  decodeMessage,
  encodeMessage,
  type Message,
  OPCODE,
  type ReadMessage,
  rcodeName,
  signMessage,
  TSIG_ALGORITHMS,
  type TsigAlgorithm,
  type TsigKey,
  TYPE,
  txtData,
  verifyAnswer,
  WireError,
} from './dns-wire.js';

/** Options of `Rfc2136Provider`. */
export interface Rfc2136Options {
  /** The server that accepts updates (the zone's primary): `host`, `host:port` or `[v6]:port`. */
  server: string;
  /** The TSIG key the server knows: its name, base64 secret and algorithm (default hmac-sha256). */
  tsig: { name: string; secret: string; algorithm?: TsigAlgorithm };
  /** The zone the records go in. Default: asked of `server` (the SOA above the record's name). */
  zone?: string;
  /** TTL of the TXT records (default 60 s). */
  ttl?: number;
  /** `udp` (default; TCP when an answer is truncated) or `tcp`. */
  transport?: DnsTransport;
  /** Time to wait for each answer (default 3 s; UDP sends three times). */
  timeoutMs?: number;
}

const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;

/** RCODEs a retry with the same key and zone meets again: the configuration must change. */
const FINAL = new Set(['NOTAUTH', 'REFUSED', 'NOTZONE', 'NOTIMP', 'BADKEY', 'BADSIG']);

const invalid = (option: string, bound: string) => optionError(option, bound, 'Rfc2136Provider');

export class Rfc2136Provider implements DnsProvider {
  readonly #server: DnsServer;
  readonly #key: TsigKey;
  readonly #zone?: string;
  readonly #ttl: number;
  readonly #transport: DnsTransport;
  readonly #timeoutMs: number;
  readonly #zones = new Map<string, Promise<string>>();

  constructor(options: Rfc2136Options) {
    try {
      this.#server = parseServer(String(options?.server ?? ''));
    } catch {
      throw invalid('server', 'must be host, host:port or [v6]:port');
    }
    const tsig = options.tsig;
    if (typeof tsig?.name !== 'string' || tsig.name === '') throw invalid('tsig.name', 'is required');
    const algorithm = tsig.algorithm ?? 'hmac-sha256';
    if (!(algorithm in TSIG_ALGORITHMS))
      throw invalid('tsig.algorithm', `must be one of ${Object.keys(TSIG_ALGORITHMS).join(', ')}`);
    const secret = typeof tsig.secret === 'string' ? Buffer.from(tsig.secret, 'base64') : Buffer.alloc(0);
    if (secret.length < 16) throw invalid('tsig.secret', 'must be a base64 key of at least 16 bytes');
    this.#key = { name: tsig.name, algorithm, secret };
    this.#zone = options.zone === undefined ? undefined : canonicalName(options.zone);
    this.#ttl = options.ttl ?? 60;
    if (!Number.isInteger(this.#ttl) || this.#ttl < 0)
      throw invalid('ttl', 'must be a whole number of seconds');
    this.#transport = options.transport ?? 'udp';
    if (this.#transport !== 'udp' && this.#transport !== 'tcp')
      throw invalid('transport', "must be 'udp' or 'tcp'");
    this.#timeoutMs = options.timeoutMs ?? 3_000;
  }

  async setTxt(fqdn: string, value: string): Promise<void> {
    await this.#update(fqdn, value, 'add');
  }

  async removeTxt(fqdn: string, value: string): Promise<void> {
    await this.#update(fqdn, value, 'delete');
  }

  /** The zone holding `fqdn`: configured, or the owner of the SOA the server answers with. */
  zoneOf(fqdn: string): Promise<string> {
    if (this.#zone) return Promise.resolve(this.#zone);
    const name = canonicalName(fqdn);
    let zone = this.#zones.get(name);
    if (!zone) {
      zone = this.#findZone(name);
      this.#zones.set(name, zone);
      zone.catch(() => this.#zones.delete(name));
    }
    return zone;
  }

  async #findZone(name: string): Promise<string> {
    const answer = await this.#ask(
      { name, type: TYPE.SOA, class: CLASS.IN },
      OPCODE.QUERY,
      [],
      `SOA query for ${name}`,
      [RCODE_NOERROR, RCODE_NXDOMAIN],
    );
    // The SOA is the answer at the apex, else in the authority section of NXDOMAIN / NODATA.
    const soa = [...answer.answers, ...answer.authority].find((r) => r.type === TYPE.SOA);
    if (!soa)
      throw this.#failure(`${formatServer(this.#server)} named no zone for ${name}`, { retryable: false });
    const zone = canonicalName(soa.name);
    if (name !== zone && !name.endsWith(`.${zone}`))
      throw this.#failure(`${formatServer(this.#server)} answered a SOA for ${zone}, not above ${name}`, {});
    return zone;
  }

  async #update(fqdn: string, value: string, action: 'add' | 'delete'): Promise<void> {
    const name = canonicalName(fqdn);
    const zone = await this.zoneOf(name);
    const record =
      action === 'add'
        ? { name, type: TYPE.TXT, class: CLASS.IN, ttl: this.#ttl, data: txtData(value) }
        : // RFC 2136 §2.5.4: class NONE deletes this one value and no other.
          { name, type: TYPE.TXT, class: CLASS.NONE, ttl: 0, data: txtData(value) };
    await this.#ask(
      { name: zone, type: TYPE.SOA, class: CLASS.IN },
      OPCODE.UPDATE,
      [record],
      `${action} TXT ${name}`,
    );
  }

  /**
   * One signed request. Resolves only with an answer signed by the key whose RCODE is in
   * `accept`; a refusal is reported whether or not it is signed (it can only fail the attempt).
   */
  async #ask(
    question: Message['questions'][0],
    opcode: number,
    updates: Message['authority'],
    what: string,
    accept: readonly number[] = [RCODE_NOERROR],
  ): Promise<ReadMessage> {
    const id = newId();
    const request = encodeMessage({
      id,
      flags: opcode << 11,
      questions: [question],
      answers: [],
      authority: updates,
      additional: [],
    });
    const { wire, mac } = signMessage(request, this.#key);
    const where = formatServer(this.#server);
    let raw: Buffer;
    let message: ReadMessage;
    try {
      raw = await exchange(this.#server, wire, { transport: this.#transport, timeoutMs: this.#timeoutMs });
      message = decodeMessage(raw);
      if (!message.response || message.opcode !== opcode)
        throw new WireError('the answer does not answer the request');
    } catch (error) {
      throw this.#failure(`rfc2136: ${what} at ${where}: ${describeCause(error)}`, {});
    }
    const check = verifyAnswer(raw, message, this.#key, mac);
    const rcode = message.rcode;
    if (check.error !== 0 || !accept.includes(rcode)) {
      const problem = rcodeName(check.error !== 0 ? check.error : rcode);
      const hint =
        problem.startsWith('BAD') || rcode === 9
          ? ' (the server does not accept this TSIG key or signature)'
          : '';
      throw this.#failure(`rfc2136: ${what} at ${where} refused: ${problem}${hint}`, {
        rcode: rcodeName(rcode),
        ...(check.error !== 0 ? { tsigError: problem } : {}),
        ...(FINAL.has(problem) ? { retryable: false } : {}),
      });
    }
    if (!check.valid) {
      throw this.#failure(
        `rfc2136: the answer to ${what} from ${where} is not signed with key ${this.#key.name} (${check.reason})`,
        {},
      );
    }
    return message;
  }

  #failure(message: string, details: Record<string, unknown>): CertkeeperError {
    return new CertkeeperError('CHALLENGE_FAILED', message, {
      details: { provider: 'rfc2136', server: formatServer(this.#server), ...details },
    });
  }
}
