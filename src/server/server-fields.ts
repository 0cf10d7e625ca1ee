/**
 * The fields of a `tls.Server` an attachment reads and guards: the context options
 * `setSecureContext` forgets unless passed again (snapshotted at attach time), and the secret
 * fields Node leaves on the server object.
 */
import type tls from 'node:tls';

/** The options `setSecureContext` forgets unless passed again. */
export const CONTEXT_OPTION_KEYS = [
  'ca',
  'crl',
  'ciphers',
  'ecdhCurve',
  'dhparam',
  'honorCipherOrder',
  'minVersion',
  'maxVersion',
  'secureOptions',
  'secureProtocol',
  'sessionIdContext',
  'sigalgs',
  'clientCertEngine',
  'privateKeyEngine',
  'privateKeyIdentifier',
  'sessionTimeout',
] as const;

/**
 * Node keeps the last `key` (and `passphrase`, `pfx`) passed to the server or to
 * `setSecureContext` as plain fields of the server object, where `console.log(server)` or a
 * logger serialising `req.socket.server` would print the private key. They become non-enumerable:
 * Node still reads and writes them (a write keeps the property's attributes), nothing lists them.
 */
export function hideSecretFields(server: tls.Server): void {
  const fields = server as unknown as Record<string, unknown>;
  for (const name of ['key', 'passphrase', 'pfx']) {
    Object.defineProperty(server, name, {
      value: fields[name],
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}
