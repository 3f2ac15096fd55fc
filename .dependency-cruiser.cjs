// The import rules of src/ (ARCHITECTURE.md explains the layers). `npm run lint` checks them, so
// CI fails on a new cycle between folders or an import against the layers.
//
// Layers, lowest first; a folder imports only from layers below it (and its own folder):
//   errors, config                      imports nothing of ours
//   observability                       config, errors, api (the health document's schema)
//   lifecycle                           errors, observability, config
//   events, crypto                      errors, config
//   kafka, postgres, redis (adapters)   the above; not each other
//   api (the wire contract)             errors, crypto
//   projections, presence, routing,     the above; each other without cycles
//   expiry, anchoring, replay (domain)
//   ingress (the HTTP edge)             all of the above
//   client (the SDK)                    errors, crypto, anchoring, api; types of routing and ingress
//   app (wiring)                        everything but cli
//   cli                                 everything
const FOUNDATION = 'errors|config';
const BELOW_ADAPTERS = `${FOUNDATION}|observability|lifecycle|events|crypto`;
const ADAPTERS = 'kafka|postgres|redis';
const DOMAIN = 'projections|presence|routing|expiry|anchoring|replay';

/** A rule: files in `from` (a folder alternation) may import from src/ only the folders `allowed`. */
const onlyImports = (name, from, allowed, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: `^src/(${from})/` },
  to: { path: '^src/', pathNot: [`^src/(${allowed})/`, '^src/$1/'] },
});

module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycle',
      comment: 'Folders form layers: no folder may depend, even through others, on a folder that depends on it.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-module-cycle',
      comment: 'Modules import each other without cycles too.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    onlyImports('errors-import-nothing', 'errors', 'errors', 'Error codes and failure kinds are the bottom layer.'),
    onlyImports('config-imports-nothing', 'config', 'config', 'Configuration is read before anything else exists.'),
    onlyImports(
      'observability-below-everything',
      'observability',
      `${FOUNDATION}|api|crypto`,
      'Observability declares the little it needs of a client instead of importing the adapters, which import its logger and metrics.',
    ),
    onlyImports(
      'lifecycle-below-adapters',
      'lifecycle',
      `${FOUNDATION}|observability`,
      'Services, shutdown and retry know nothing of what they run.',
    ),
    onlyImports(
      'events-and-crypto-are-pure',
      'events|crypto',
      FOUNDATION,
      'The event vocabulary and the signatures stand alone.',
    ),
    onlyImports(
      'adapters-stay-adapters',
      ADAPTERS,
      BELOW_ADAPTERS,
      'An adapter speaks to one dependency; it raises its own errors and never imports HTTP, domain or another adapter.',
    ),
    onlyImports(
      'api-is-pure',
      'api',
      'errors|crypto',
      'The wire contract is schemas only (with the address format of crypto/): everyone may import it, it imports nothing but errors/ and crypto/.',
    ),
    onlyImports(
      'domain-below-ingress',
      DOMAIN,
      `${BELOW_ADAPTERS}|${ADAPTERS}|${DOMAIN}|api`,
      'Projections, presence, routing, expiry, anchoring and replay do not know the HTTP edge, the client, the wiring or the CLI.',
    ),
    onlyImports(
      'ingress-below-wiring',
      'ingress',
      `${BELOW_ADAPTERS}|${ADAPTERS}|${DOMAIN}|api`,
      'The ingress is given its connections by app/; it never imports app/ or cli/.',
    ),
    onlyImports(
      'client-stands-alone',
      'client',
      'errors|crypto|anchoring|api|routing|ingress',
      'The client SDK runs without the server: it must not pull in Kafka, Postgres, Redis or the wiring.',
    ),
    {
      name: 'client-takes-only-types-from-the-server',
      comment: "The client may name the server's wire types (until src/api holds them all), never run its code.",
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/(routing|ingress)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'only-cli-imports-app',
      comment: 'app/ wires the process; only the command line starts it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(app|cli)/' },
      to: { path: '^src/app/' },
    },
    {
      name: 'cli-is-not-imported',
      comment: 'The command line is the top: nothing imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    // Type-only imports count: a cycle of types is still a cycle between folders.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
