/**
 * Identity-aware policies, as the reference's gateway has them: who (`actor`) may use what (`resource`),
 * when (`condition`, CEL), and with what spend per UTC calendar period (`action`).
 */
export { compilePolicies, MAX_POLICIES } from './compile.js'
export { MAX_CONDITION_BYTES } from './condition.js'
export { evaluatePolicies, settlePolicies } from './evaluate.js'
export { PERIODS, type Period, type PeriodWindow, periodWindow } from './periods.js'
export type {
  CompiledPolicies,
  CompiledPolicy,
  CompilePoliciesOptions,
  Policy,
  PolicyAction,
  PolicyCallOptions,
  PolicyCharge,
  PolicyDecision,
  PolicyDeniedBody,
  PolicyFailure,
  PolicyRequest,
  SettlePolicyOptions,
  SpendExceededBody,
} from './types.js'
