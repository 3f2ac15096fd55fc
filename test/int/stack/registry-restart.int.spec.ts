import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../../src/config/config.js';
import { stack } from '../../helpers/processes.js';

// Schema ids are written into every event forever, so a registry restart must give them back.
// This file runs a registry of its own (own port, own database) so it can stop and start it
// without disturbing the shared one.
describe('the schema registry after a restart', () => {
  const port = String(18100 + (randomBytes(2).readUInt16BE(0) % 800));
  const database = `relay_registry_test_${randomBytes(4).toString('hex')}`;
  const env = { RELAY_REGISTRY_PORT: port, RELAY_REGISTRY_DB: database };
  const base = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const subject = `relay.test.Restart${randomBytes(3).toString('hex')}`;
  const schema = JSON.stringify({
    type: 'record',
    name: subject.split('.').pop(),
    namespace: 'relay.test',
    fields: [{ name: 'n', type: 'long' }],
  });

  const register = async (): Promise<number> => {
    const response = await fetch(`${base}/subjects/${subject}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { id: number }).id;
  };

  afterAll(async () => {
    await stack(['registry-down'], env).catch(() => undefined);
    const admin = new pg.Client({ connectionString: loadConfig().postgres.url.replace(/\/[^/]*$/, '/postgres') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}"`);
    await admin.end();
  }, 120_000);

  it('gives back the same id for the same schema', async () => {
    await stack(['registry-up'], env);
    const before = await register();

    await stack(['registry-down'], env);
    await expect(fetch(`${base}/subjects`)).rejects.toThrow();
    await stack(['registry-up'], env);

    const fetched = (await (await fetch(`${base}/schemas/ids/${before}`)).json()) as { schema: string };
    expect(JSON.parse(fetched.schema)).toEqual(JSON.parse(schema));
    expect(await register()).toBe(before);
  }, 300_000);
});
