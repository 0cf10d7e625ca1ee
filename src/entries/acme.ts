// `certkeeper/acme`: issuing from an ACME CA (Let's Encrypt, ZeroSSL, Pebble, step-ca's ACME),
// the challenge solvers it drives, and the DNS providers of DNS-01. Every exported name is listed.

export {
  type Dns01Options,
  Dns01Solver,
  type DnsProvider,
  dns01Record,
  dns01Value,
} from '../challenges/dns-01.js';
export {
  createHttp01Handler,
  type Http01Handler,
  type Http01ServerOptions,
  Http01Solver,
  startHttp01Server,
} from '../challenges/http-01.js';
export { ChallTestSrvProvider } from '../challenges/providers/challtestsrv.js';
export { type Rfc2136Options, Rfc2136Provider } from '../challenges/providers/rfc2136.js';
export type { ChallengeSolver, ChallengeTask, ChallengeType } from '../challenges/solver.js';
export { TlsAlpn01Solver, tlsAlpnSupported } from '../challenges/tls-alpn-01/solver.js';
export { AcmeIssuer, type AcmeIssuerOptions } from '../issuers/acme/acme-issuer.js';
export type { PollOptions } from '../issuers/acme/order.js';
