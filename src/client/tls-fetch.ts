import { request } from 'node:https';

/**
 * A fetch over node:https that trusts `ca` (PEM) for the relay's certificate, e.g. the local CA
 * `relay dev-certs` makes. Node's global fetch takes no CA per call (only NODE_EXTRA_CA_CERTS at
 * process start), so a client for a relay with a private CA needs this. It covers what the client
 * uses: a method, headers, a string body and an abort signal.
 */
export function fetchTrusting(ca: string | Buffer): typeof fetch {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = input instanceof Request ? input.url : input.toString();
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => (headers[name] = value));
      const body = init.body;
      if (body !== undefined && body !== null && typeof body !== 'string') {
        reject(new TypeError('fetchTrusting sends string bodies only.'));
        return;
      }
      const outgoing = request(
        url,
        { method: init.method ?? 'GET', headers, ca, signal: init.signal ?? undefined },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('error', reject);
          incoming.on('end', () => {
            const answerHeaders = new Headers();
            for (const [name, value] of Object.entries(incoming.headers)) {
              if (typeof value === 'string') answerHeaders.set(name, value);
              else if (Array.isArray(value)) for (const item of value) answerHeaders.append(name, item);
            }
            const status = incoming.statusCode ?? 0;
            // A Response cannot carry a body for 204 and 304.
            const payload = status === 204 || status === 304 ? null : Buffer.concat(chunks);
            resolve(
              new Response(payload, { status, statusText: incoming.statusMessage ?? '', headers: answerHeaders }),
            );
          });
        },
      );
      outgoing.on('error', reject);
      if (body) outgoing.write(body);
      outgoing.end();
    });
}
