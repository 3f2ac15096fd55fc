import { readFileSync } from 'node:fs';
import { CONTRACT_ARTIFACT, renderArtifact } from '../../../src/anchoring/contract-compiler.js';

// The ABI and bytecode the relay deploys are committed; this keeps them what the source compiles to.
describe('the RelayAnchor artifact', () => {
  it('is what solc-js compiles contracts/RelayAnchor.sol to (run `npm run contracts` after changing it)', () => {
    expect(readFileSync(CONTRACT_ARTIFACT, 'utf8')).toBe(renderArtifact());
  }, 60_000);
});
