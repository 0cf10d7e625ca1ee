/** On-demand certificates at handshake time, with admission control (see docs/on-demand.md). */
export { Admission, type DecideFunction, type HandshakeHello, onDemandName } from './admission.js';
export { OrderBudgets, registeredDomain } from './budgets.js';
export { OnDemandCoordinator, type OnDemandOutcome, type OnDemandSource } from './coordinator.js';
export type { DenyReason, OnDemandCounts, OnDemandEvent, OnDemandListener } from './events.js';
export type { ObtainOptions, OnDemandCertificate, OnDemandHost } from './host.js';
export { IssuerHost, type IssuerHostOptions, onDemandId } from './issuer-host.js';
export { DEFAULT_LIMITS, type OnDemandLimits } from './limits.js';
export type { OnDemandOptions } from './options.js';
export { type OnDemandSniOptions, onDemandSniCallback } from './sni.js';
