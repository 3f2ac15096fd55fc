import { Type, type Static } from '@sinclair/typebox';

export const Health = Type.Object({ status: Type.Literal('ok') }, { $id: 'Health' });

export const CheckResult = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  latency_ms: Type.Integer({ minimum: 0 }),
  error: Type.Optional(Type.String()),
});
export type CheckResult = Static<typeof CheckResult>;

/** /readyz: every dependency's check; `down` names the failed ones (a 503, plain JSON). */
export const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Record(Type.String(), CheckResult),
    down: Type.Optional(Type.Array(Type.String())),
  },
  { $id: 'Readiness' },
);
export type Readiness = Static<typeof Readiness>;
