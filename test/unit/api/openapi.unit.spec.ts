import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { Router } from 'express';
import { OPENAPI_PATH, OPERATIONS, openApiDocument, problemCodes } from '../../../src/api/openapi.js';
import { ERROR_CODES } from '../../../src/errors/codes.js';
import { createApp } from '../../../src/ingress/app.js';
import type { ApiDeps } from '../../../src/ingress/api-routes.js';
import { STREAM_PATH } from '../../../src/ingress/stream-hub.js';
import type { Resources } from '../../../src/app/resources.js';

// The served document is built from OPERATIONS; these checks keep that list true to the routes
// Express registers, and the document valid OpenAPI 3.1.

interface Layer {
  readonly rawPath?: string;
  readonly route?: { readonly path: string; readonly methods: Readonly<Record<string, boolean>> };
  readonly handle: { readonly stack?: readonly Layer[] };
}

/** Every `METHOD path` Express answers, mounted routers included, with `:param` written `{param}`. */
function routesOf(stack: readonly Layer[], base = ''): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      const path = `${base}${layer.route.path}`.replace(/:(\w+)/g, '{$1}');
      return Object.keys(layer.route.methods)
        .filter((m) => m !== '_all')
        .map((method) => `${method.toUpperCase()} ${path}`);
    }
    return layer.handle.stack
      ? routesOf(layer.handle.stack, `${base}${layer.rawPath === '/' ? '' : (layer.rawPath ?? '')}`)
      : [];
  });
}

describe('the OpenAPI document', () => {
  const document = openApiDocument('test');
  const documented = Object.entries(document['paths'] as Record<string, Record<string, unknown>>).flatMap(
    ([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );

  it('is valid OpenAPI 3.1', async () => {
    const copy = JSON.parse(JSON.stringify(document)) as Parameters<typeof SwaggerParser.validate>[0];
    await expect(SwaggerParser.validate(copy)).resolves.toBeDefined();
    expect(document['openapi']).toBe('3.1.0');
  });

  it('lists every route Express registers, and nothing else but the stream', () => {
    const resources = {
      config: { registry: { url: 'http://registry.invalid' } },
      pool: {},
      redis: {},
      metrics: {},
      log: {},
      kafkaAdmin: () => ({}),
    };
    const app = createApp(resources as unknown as Resources, {} as ApiDeps);
    const registered = routesOf((app as unknown as { router: Router & { stack: Layer[] } }).router.stack);
    expect(registered.length).toBeGreaterThanOrEqual(14);
    expect(registered.filter((route) => !documented.includes(route))).toEqual([]);
    expect(documented.filter((route) => !registered.includes(route))).toEqual([`GET ${STREAM_PATH}`]);
    expect(documented).toContain(`GET ${OPENAPI_PATH}`);
  });

  it('answers every operation with a problem document for each code it can give, under its status', () => {
    const paths = document['paths'] as Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: { allOf?: unknown[] } }> }> }>
    >;
    for (const op of OPERATIONS) {
      const responses = paths[op.path]?.[op.method]?.responses ?? {};
      for (const code of problemCodes(op)) {
        const schema = responses[String(ERROR_CODES[code].status)]?.content?.['application/problem+json']?.schema;
        expect(JSON.stringify(schema)).toContain(`"${code}"`);
      }
    }
  });
});

describe('docs/reference/api.md', () => {
  const page = readFileSync(new URL('../../../docs/reference/api.md', import.meta.url), 'utf8');

  it('has a section for every operation of the document', () => {
    const missing = OPERATIONS.filter((op) => !page.includes(`### \`${op.method.toUpperCase()} ${op.path}\``)).map(
      (op) => op.operationId,
    );
    expect(missing).toEqual([]);
  });

  it('links the served document', () => {
    expect(page).toContain(OPENAPI_PATH);
  });
});
