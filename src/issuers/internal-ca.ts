/** The embedded CA; its parts are in `./internal-ca/` (state, commit, transitions, CRLs). */
export {
  InternalCA,
  type InternalCAOptions,
  type RootRotationPhase,
  type RootRotationStatus,
  type RotateIntermediateOptions,
} from './internal-ca/internal-ca.js';
