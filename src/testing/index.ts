// certkeeper/testing: helpers for people who implement certkeeper contracts.

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
