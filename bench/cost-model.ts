/** What each message costs, by component; the relay's roles first, then the stores they use. */
export const ROLE_COMPONENTS = ['ingress', 'projector', 'router', 'presence'] as const;
export const STORE_COMPONENTS = ['kafka', 'postgres', 'redis'] as const;
export const COST_CORES = [2, 4, 8] as const;

export interface CorePrediction {
  readonly cores: number;
  /** Messages/s when the roles and Kafka, Postgres and Redis share these cores. */
  readonly sameCores: number;
  /** Messages/s when these cores run only the roles, and the stores run on machines of their own. */
  readonly ownMachines: number;
  /** Cores the stores then need elsewhere at that rate. */
  readonly storeCoresElsewhere: number;
}

export interface CostModel {
  /** CPU-ms per accepted message of each component, from the batch phase (load and drain). */
  readonly msPerMessage: Readonly<Record<string, number>>;
  readonly rolesMs: number;
  readonly storesMs: number;
  /** Every relay process together: the roles and the stores (not the load generator, not "others"). */
  readonly totalMs: number;
  readonly predictions: readonly CorePrediction[];
  /** The batch phase's rate on this machine. */
  readonly measuredRate: number;
  readonly machineCores: number;
  /** Cores the relay had during the batch load: the machine's, less what the load generator and other work used. */
  readonly coresLeft: number;
  /** The rate the model predicts on `coresLeft` cores shared with the stores. */
  readonly predictedOnCoresLeft: number;
  /** CPU-ms of one Ed25519 check as the ingress makes it (libsodium), and its share of the ingress's CPU per message. */
  readonly signatureMs: number;
  readonly signatureShareOfIngress: number;
}

/**
 * The cost model: if every component scales out by processes (the ingress behind a load balancer)
 * or partitions (the consumers, Kafka), a rate needs (CPU-ms per message × rate / 1000) cores, so
 * N cores sustain N × 1000 / (CPU-ms per message) messages/s, with no core left idle and nothing
 * else running on them.
 */
export function costModel(options: {
  /** CPU seconds per 1,000 accepted messages by process name: the same number as CPU-ms per message. */
  cpuPer1000: Readonly<Record<string, number>>;
  measuredRate: number;
  machineCores: number;
  /** Cores the load generator and other work used on average during the load. */
  coresTaken: number;
  signatureMicros: number;
}): CostModel {
  const msPerMessage: Record<string, number> = {};
  for (const name of [...ROLE_COMPONENTS, ...STORE_COMPONENTS]) msPerMessage[name] = options.cpuPer1000[name] ?? 0;
  const sum = (names: readonly string[]) => names.reduce((total, name) => total + (msPerMessage[name] ?? 0), 0);
  const rolesMs = sum(ROLE_COMPONENTS);
  const storesMs = sum(STORE_COMPONENTS);
  const totalMs = rolesMs + storesMs;
  const rate = (cores: number, ms: number) => (ms > 0 ? (cores * 1000) / ms : Infinity);
  const predictions = COST_CORES.map((cores) => {
    const ownMachines = rate(cores, rolesMs);
    return {
      cores,
      sameCores: rate(cores, totalMs),
      ownMachines,
      storeCoresElsewhere: (ownMachines * storesMs) / 1000,
    };
  });
  const coresLeft = Math.max(0, options.machineCores - options.coresTaken);
  const signatureMs = options.signatureMicros / 1000;
  const ingressMs = msPerMessage['ingress'] ?? 0;
  return {
    msPerMessage,
    rolesMs,
    storesMs,
    totalMs,
    predictions,
    measuredRate: options.measuredRate,
    machineCores: options.machineCores,
    coresLeft,
    predictedOnCoresLeft: rate(coresLeft, totalMs),
    signatureMs,
    signatureShareOfIngress: ingressMs > 0 ? signatureMs / ingressMs : NaN,
  };
}
