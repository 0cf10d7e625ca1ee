// certkeeper/testing: helpers for people who implement certkeeper contracts.

export {
  type ChallengeReach,
  type ChallengeSolverConformanceOptions,
  type ChallengeSolverFactory,
  type ChallengeSolverUnderTest,
  runChallengeSolverConformance,
  type Sighting,
} from './challenge-conformance.js';
export {
  type DnsProviderConformanceOptions,
  type DnsProviderFactory,
  type DnsProviderUnderTest,
  runDnsProviderConformance,
} from './dns-provider-conformance.js';
export { FakeClock } from './fake-clock.js';
export {
  type IssuerConformanceOptions,
  type IssuerFactory,
  type IssuerUnderTest,
  runIssuerConformance,
} from './issuer-conformance.js';
export {
  runStoreConformance,
  type StoreConformanceOptions,
  type StoreFactory,
  type StoreUnderTest,
} from './store-conformance.js';
export {
  runTrustSourceConformance,
  type TrustSourceConformanceOptions,
  type TrustSourceFactory,
  type TrustSourceUnderTest,
} from './trust-source-conformance.js';
