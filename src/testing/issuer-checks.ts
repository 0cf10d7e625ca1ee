/**
 * The checks behind `runIssuerConformance`, as plain functions that list what is wrong (empty
 * when nothing), so a failing test says everything at once and the checks can be tested alone.
 */
import { createCsr } from '../crypto/csr.js';
import { type CertificateInfo, parseCertificates } from '../crypto/inspect.js';
import { type KeyType, PrivateKey } from '../crypto/keys.js';
import { parseNames } from '../crypto/names.js';
import { toPem } from '../crypto/pem.js';
import { validateBundle } from '../crypto/validate.js';
import type { CertificatePurpose, CertificateRequest, IssuedCertificate } from '../issuers/issuer.js';

const EKU: Record<CertificatePurpose, string> = { server: 'serverAuth', client: 'clientAuth' };

/** A request as the manager builds it: a fresh key of `keyType` and a CSR for `names` signed by it. */
export async function makeRequest(
  names: readonly string[],
  options: { purpose?: CertificatePurpose; keyType?: KeyType; id?: string } = {},
): Promise<CertificateRequest> {
  const keyType = options.keyType ?? 'ec-p256';
  const key = await PrivateKey.generate(keyType);
  const normalised = parseNames(names).map((n) => n.value);
  return {
    id: options.id ?? normalised[0]!,
    names: normalised,
    purpose: options.purpose ?? 'server',
    keyType,
    key,
    csr: await createCsr({ key, names: normalised }),
  };
}

/** `request` with its CSR's signature broken (last byte flipped): a CA must refuse it. */
export function withBrokenCsr(request: CertificateRequest): CertificateRequest {
  const der = Buffer.from(request.csr.der);
  der[der.length - 1]! ^= 0x01;
  return { ...request, csr: { ...request.csr, der, pem: toPem('CERTIFICATE REQUEST', der) } };
}

/** The key an issued certificate is for: the one the issuer returned, else the request's. */
export function issuedKey(request: CertificateRequest, issued: IssuedCertificate): PrivateKey {
  return issued.key ?? request.key;
}

/**
 * What is wrong with `issued` as the answer to `request`: the chain must be certificates only,
 * leaf first, for exactly the requested names, for the request's key (or the key returned with
 * it), with the purpose's EKU, and valid now for that purpose, up to `anchors` when any are given.
 */
export function issuedProblems(
  request: CertificateRequest,
  issued: IssuedCertificate,
  anchors: readonly string[],
  now: number,
): { problems: string[]; leaf?: CertificateInfo } {
  if (typeof issued?.chainPem !== 'string') return { problems: ['chainPem is not a string'] };
  if (/PRIVATE KEY/.test(issued.chainPem)) return { problems: ['chainPem holds a private key'] };
  let chain: ReturnType<typeof parseCertificates>;
  try {
    chain = parseCertificates(issued.chainPem);
  } catch (error) {
    return { problems: [`chainPem does not parse: ${(error as Error).message}`] };
  }
  const leaf = chain[0]!.info;
  const problems: string[] = [];
  if (issued.key !== undefined && !(issued.key instanceof PrivateKey))
    problems.push('the returned key is not a PrivateKey');
  if (leaf.isCA) problems.push('the first certificate is a CA certificate, not the leaf');
  for (const [i, cert] of chain.slice(1).entries()) {
    if (!cert.info.isCA) problems.push(`certificate ${i + 1} of the chain is not a CA certificate`);
  }
  const wanted = [...request.names].sort();
  const got = [...leaf.names].sort();
  if (JSON.stringify(got) !== JSON.stringify(wanted))
    problems.push(`the leaf is for [${got.join(', ')}], the request for [${wanted.join(', ')}]`);
  if (!leaf.extKeyUsage?.includes(EKU[request.purpose]))
    problems.push(`the leaf lacks the ${EKU[request.purpose]} extended key usage`);
  const key = issued.key instanceof PrivateKey ? issued.key : request.key;
  const verdict = validateBundle({
    key,
    chain: issued.chainPem,
    names: request.names,
    purpose: request.purpose,
    ...(anchors.length > 0 ? { trustAnchors: anchors } : {}),
    now: new Date(now),
  });
  if (!verdict.ok) problems.push(...verdict.problems.map((p) => `${p.code}: ${p.message}`));
  return { problems, leaf };
}

/** What is wrong with the answer of `trustAnchors()`: a list of CA certificates, nothing else. */
export function anchorProblems(anchors: unknown): string[] {
  if (!Array.isArray(anchors)) return ['trustAnchors() did not resolve with an array'];
  const problems: string[] = [];
  for (const [i, pem] of anchors.entries()) {
    if (typeof pem !== 'string') {
      problems.push(`anchor ${i} is not a string`);
      continue;
    }
    if (/PRIVATE KEY/.test(pem)) problems.push(`anchor ${i} holds a private key`);
    try {
      for (const cert of parseCertificates(pem, 'trust anchor')) {
        if (!cert.info.isCA) problems.push(`anchor ${i} is not a CA certificate`);
      }
    } catch (error) {
      problems.push(`anchor ${i} does not parse: ${(error as Error).message}`);
    }
  }
  return problems;
}
