// Issuers for lifecycle tests: the real InternalCA behind a switchboard that can take it down,
// count calls, or hand back a deliberately wrong certificate (other names, other key).

import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { CertkeeperError } from '../../src/errors.js';
import { InternalCA, type InternalCAOptions } from '../../src/issuers/internal-ca.js';
import type {
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
} from '../../src/issuers/issuer.js';

/** `hang`: never answers, ignoring the signal (a custom issuer or API that hangs). */
export type Fault = 'down' | 'wrong-name' | 'wrong-key' | 'garbage' | 'hang' | null;

export class SwitchableIssuer implements Issuer {
  readonly id: string;
  readonly ca: InternalCA;
  fault: Fault = null;
  /** When set, the fault hits only requests for one of these names. */
  faultNames: string[] | null = null;
  calls = 0;

  constructor(options: InternalCAOptions & { id?: string } = {}) {
    this.ca = new InternalCA(options);
    this.id = options.id ?? this.ca.id;
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    this.calls++;
    const hit = !this.faultNames || request.names.some((n) => this.faultNames!.includes(n));
    switch (hit ? this.fault : null) {
      case 'down':
        throw new CertkeeperError('ISSUER_UNAVAILABLE', 'test issuer is down');
      case 'garbage':
        return { chainPem: '<html>502 Bad Gateway</html>' };
      case 'hang':
        return new Promise(() => {});
      case 'wrong-name': {
        const issued = await this.ca.issue({ ...request, names: ['wrong.test'] }, context);
        return issued;
      }
      case 'wrong-key': {
        const other = await PrivateKey.generate();
        const issued = await this.ca.issue(request, context);
        return { ...issued, key: other };
      }
      default:
        return this.ca.issue(request, context);
    }
  }

  trustAnchors(context: IssuerContext): Promise<string[]> {
    return this.ca.trustAnchors(context);
  }

  revoke(...args: Parameters<InternalCA['revoke']>): Promise<void> {
    return this.ca.revoke(...args);
  }
}

/** An issuer that is never reachable. */
export const unreachableIssuer: Issuer = {
  id: 'unreachable',
  async issue() {
    throw new CertkeeperError('ISSUER_UNAVAILABLE', 'connect ECONNREFUSED 127.0.0.1:9');
  },
};

/** A self-signed certificate for `names`, for stores seeded by hand. */
export async function selfSigned(names: string[], lifetimeMs = 3_600_000) {
  const key = await PrivateKey.generate();
  const now = Date.now();
  const certificate = await createCertificate({
    publicKey: key,
    names,
    commonName: names[0],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + lifetimeMs),
    extKeyUsage: ['serverAuth'],
  });
  return { key, certificate };
}
