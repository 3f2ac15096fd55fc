import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/paths.js';
import { eventually } from './context.js';
import { exited, freePort } from './processes.js';

/** Hardhat's first development account: public knowledge, for local chains only. */
export const DEV_SIGNER_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

export interface LocalChain {
  readonly rpcUrl: string;
  /** The environment that points a relay's anchoring at this chain. */
  readonly env: Record<string, string>;
  /** Freezes the node (SIGSTOP): calls to it hang until resume(). Its chain is kept. */
  pause(): void;
  resume(): void;
  /** JSON-RPC call, for checks the test makes itself. */
  rpc<T>(method: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
}

/**
 * A Hardhat node of this test file's own on a free port, like the stack's (chain id 31337, a
 * block per transaction and one a second), so tests can freeze it without touching others'.
 */
export async function startLocalChain(): Promise<LocalChain> {
  const port = await freePort();
  // Under the project (.relay/, ignored by git): Hardhat runs only from a folder that sees its node_modules.
  mkdirSync(join(PROJECT_ROOT, '.relay', 'test-chains'), { recursive: true });
  const dir = mkdtempSync(join(PROJECT_ROOT, '.relay', 'test-chains', 'chain-'));
  const config = join(dir, 'hardhat.config.cjs');
  writeFileSync(
    config,
    'module.exports = { networks: { hardhat: { chainId: 31337, mining: { auto: true, interval: 1000 } } } };\n',
  );
  const child: ChildProcess = spawn(
    `${PROJECT_ROOT}node_modules/.bin/hardhat`,
    ['--config', config, 'node', '--hostname', '127.0.0.1', '--port', String(port)],
    {
      cwd: dir,
      env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-2000)));
  child.once('exit', (code) => {
    if (code) process.stderr.write(`hardhat node exited with ${code}: ${tail}\n`);
  });
  const rpcUrl = `http://127.0.0.1:${port}`;
  let id = 0;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const response = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
    });
    const body = (await response.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(body.error.message);
    return body.result as T;
  };
  await eventually(
    async () => ((await rpc<string>('eth_chainId')) === '0x7a69' ? true : undefined),
    90_000,
    'the Hardhat node',
  );
  return {
    rpcUrl,
    env: { RELAY_ANCHOR_RPC_URL: rpcUrl, RELAY_ANCHOR_CHAIN_ID: '31337', RELAY_ANCHOR_PRIVATE_KEY: DEV_SIGNER_KEY },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    rpc,
    async stop() {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
