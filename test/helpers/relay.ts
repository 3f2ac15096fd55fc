import { consumerService, ingressServices } from '../../src/app/roles.js';
import { fetchTrusting } from '../../src/client/tls-fetch.js';
import { runServices } from '../../src/lifecycle/service.js';
import { openTestContext, type TestContext } from './context.js';

export interface IngressNode {
  readonly baseUrl: string;
  readonly wsUrl: string;
}

export interface RunningRelay extends IngressNode {
  readonly ctx: TestContext;
  /** Every ingress node (each with its own node id and producer); the first is `baseUrl`. */
  readonly nodes: readonly IngressNode[];
  stop(): Promise<void>;
}

/**
 * Every role of the relay in this process, on its own topics, schema and keys, against the real
 * stack; `ingressNodes` runs that many ingress nodes side by side, as behind a load balancer.
 */
export async function startRelay(
  label: string,
  overrides: Record<string, string> = {},
  options: { ingressNodes?: number } = {},
): Promise<RunningRelay> {
  const ctx = await openTestContext(label, overrides);
  const ingressNodes = Array.from({ length: options.ingressNodes ?? 1 }, (_, i) =>
    ingressServices(i === 0 ? ctx : { ...ctx, config: { ...ctx.config, nodeId: `${ctx.config.nodeId}-${i}` } }),
  );
  const consumers = (['projector', 'presence', 'router'] as const).map((role) => consumerService(ctx, role));
  const controller = new AbortController();
  const running = runServices([...ingressNodes.flatMap((n) => n.services), ...consumers], controller.signal, ctx.log);
  running.catch(() => undefined);
  const nodes = await Promise.all(
    ingressNodes.map(async ({ ingress }) => {
      const { port } = await ingress.address();
      return {
        baseUrl: `${ctx.config.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
        wsUrl: `${ctx.config.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
      };
    }),
  );
  await Promise.all(consumers.map((c) => c.joined()));
  return {
    ctx,
    nodes,
    ...(nodes[0] as IngressNode),
    async stop() {
      controller.abort();
      await running.catch(() => undefined);
      await ctx.cleanup();
    },
  };
}

export interface Answer<T = Record<string, unknown>> {
  readonly status: number;
  readonly contentType: string;
  readonly headers: Headers;
  readonly body: T;
}

/** One HTTPS call that trusts `ca` (the client's fetchTrusting: node's fetch takes no CA per call). */
export const callTls = <T = Record<string, unknown>>(
  baseUrl: string,
  ca: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> => call<T>(baseUrl, method, path, body, headers, fetchTrusting(ca));

/** One HTTP call; a JSON body is parsed, anything else is returned as text. */
export async function call<T = Record<string, unknown>>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  fetcher: typeof fetch = fetch,
): Promise<Answer<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetcher(`${baseUrl}${path}`, init);
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    contentType,
    headers: response.headers,
    body: (contentType.includes('json') && text ? JSON.parse(text) : text) as T,
  };
}
