// certkeeper/testing: helpers for people who implement certkeeper contracts.

export {
  runStoreConformance,
  type StoreConformanceOptions,
  type StoreFactory,
  type StoreUnderTest,
} from './store-conformance.js';
