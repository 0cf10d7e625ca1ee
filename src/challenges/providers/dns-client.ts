/**
 * One DNS exchange with one server, over UDP (retransmitted on silence, moved to TCP when the
 * answer is truncated) or TCP (RFC 7766 length-prefixed). The answer must come from the server
 * asked and carry the query's ID; anything else arriving on the socket is ignored.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';

export interface DnsServer {
  host: string;
  port: number;
}

export type DnsTransport = 'udp' | 'tcp';

/** `host`, `host:port`, `[v6]:port` or a bare IPv6 address. */
export function parseServer(text: string, defaultPort = 53): DnsServer {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  if (isIP(text) === 6) return { host: text, port: defaultPort };
  const [host, port, extra] = text.split(':');
  if (!host || extra !== undefined || (port !== undefined && !/^\d{1,5}$/.test(port)))
    throw new Error(`not a DNS server address: "${text}"`);
  return { host, port: port === undefined ? defaultPort : Number(port) };
}

export function formatServer(server: DnsServer): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export function newId(): number {
  return randomInt(0, 0x10000);
}

async function address(host: string): Promise<string> {
  return isIP(host) ? host : (await lookup(host)).address;
}

export interface ExchangeOptions {
  transport: DnsTransport;
  /** Per try (default 3 s). */
  timeoutMs?: number;
  /** UDP sends before giving up (default 3). */
  tries?: number;
}

/** Sends `query` and resolves with the server's answer (raw). */
export async function exchange(server: DnsServer, query: Buffer, options: ExchangeOptions): Promise<Buffer> {
  const host = await address(server.host);
  const timeoutMs = options.timeoutMs ?? 3_000;
  if (options.transport === 'tcp') return exchangeTcp(host, server.port, query, timeoutMs);
  const answer = await exchangeUdp(host, server.port, query, timeoutMs, options.tries ?? 3);
  // TC: the answer did not fit a datagram; ask again over TCP.
  return (answer.readUInt16BE(2) & 0x0200) !== 0 ? exchangeTcp(host, server.port, query, timeoutMs) : answer;
}

function exchangeUdp(
  host: string,
  port: number,
  query: Buffer,
  timeoutMs: number,
  tries: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    let sent = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: Error | null, answer?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(answer!);
    };
    const send = () => {
      if (sent++ >= tries) {
        finish(new Error(`no answer from ${host}:${port} over UDP after ${tries} tries of ${timeoutMs} ms`));
        return;
      }
      socket.send(query, port, host, (error) => {
        if (error) finish(error);
      });
      timer = setTimeout(send, timeoutMs);
    };
    socket.on('message', (message, from) => {
      if (from.address !== host || from.port !== port) return;
      if (message.length < 12 || message.readUInt16BE(0) !== query.readUInt16BE(0)) return;
      finish(null, message);
    });
    socket.on('error', (error) => finish(error));
    send();
  });
}

function exchangeTcp(host: string, port: number, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error: Error | null, answer?: Buffer) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(answer!);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`no answer from ${host}:${port} over TCP within ${timeoutMs} ms`)),
    );
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      // At most 2 + 65535 bytes: the length prefix bounds what is kept.
      chunks.push(chunk);
      const buf = Buffer.concat(chunks);
      if (buf.length >= 2 && buf.length - 2 >= buf.readUInt16BE(0))
        finish(null, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () =>
      finish(new Error(`${host}:${port} closed the TCP connection without an answer`)),
    );
  });
}
