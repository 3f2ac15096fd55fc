import { RelayClientError, isProblemDocument } from './errors.js';

export const API_PREFIX = '/api/v1';

export interface TransportOptions {
  /** Where the relay listens, e.g. `https://relay.example` (a path prefix is kept). */
  readonly baseUrl: string;
  /** Sent as `X-API-Key` on every /api/v1 request and on the stream's upgrade. */
  readonly apiKey?: string | undefined;
  /** Per-request time limit; default 30 s. */
  readonly timeoutMs?: number | undefined;
  /** Defaults to the global fetch; inject one for proxies or instrumentation. */
  readonly fetch?: typeof fetch | undefined;
}

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly body?: unknown;
  /** An access token for `Authorization: Bearer`. */
  readonly bearer?: string | undefined;
}

/** HTTP to the relay's /api/v1: JSON in, JSON out, problem documents turned into RelayClientError. */
export class HttpTransport {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: TransportOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.baseUrl);
    } catch {
      throw new TypeError(`baseUrl must be an absolute http(s) URL, not "${options.baseUrl}".`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new TypeError(`baseUrl must be http or https, not ${parsed.protocol}`);
    this.base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The absolute URL of an API path such as `/messages`. */
  url(path: string, query: RequestOptions['query'] = {}): string {
    const url = new URL(`${this.base}${API_PREFIX}${path}`);
    for (const [name, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(name, String(value));
    return url.toString();
  }

  /** The ws(s) URL of an API path, for the stream. */
  webSocketUrl(path: string, query: RequestOptions['query'] = {}): string {
    return this.url(path, query).replace(/^http/, 'ws');
  }

  /** Headers every API request carries, plus the bearer token when given. */
  headers(bearer?: string): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.apiKey !== undefined) headers['x-api-key'] = this.options.apiKey;
    if (bearer !== undefined) headers['authorization'] = `Bearer ${bearer}`;
    return headers;
  }

  async request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<T> {
    const headers = this.headers(options.bearer);
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(this.timeoutMs) };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    const target = this.url(path, options.query);
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(target, init);
      text = await response.text();
    } catch (error) {
      throw new RelayClientError({
        status: 0,
        code: 'network_error',
        detail: `${method} ${path} got no answer: ${(error as Error).message}`,
        cause: error,
      });
    }
    let parsed: unknown;
    let parseFailed = false;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parseFailed = true;
    }
    if (!response.ok) {
      if (isProblemDocument(parsed)) throw RelayClientError.fromProblem(parsed, response.headers.get('retry-after'));
      const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
      throw new RelayClientError({
        status: response.status,
        code: 'unexpected_response',
        detail: `${method} ${path} answered ${response.status} without a problem document: ${text.slice(0, 200)}`,
        ...(Number.isFinite(retryAfter) ? { retryAfter } : {}),
      });
    }
    if (parseFailed || typeof parsed !== 'object' || parsed === null) {
      throw new RelayClientError({
        status: response.status,
        code: 'unexpected_response',
        detail: `${method} ${path} answered ${response.status} with a body that is not a JSON object.`,
        canRetry: false,
      });
    }
    return parsed as T;
  }
}
