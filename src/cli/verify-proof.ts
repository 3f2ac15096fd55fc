import { readFile } from 'node:fs/promises';
import { chainAt } from '../anchoring/chain.js';
import { checkProofMath, checkProofOnChain, ProofError, type MessageProof } from '../anchoring/proof.js';
import { UsageError } from '../errors/usage-error.js';
import { parseCommandLine } from './args.js';

export const VERIFY_PROOF_USAGE = `usage: relay verify-proof --rpc URL [--contract ADDRESS] [--min-confirmations N] FILE|-

Checks a message's anchoring proof (the JSON of GET /api/v1/messages/{id}/proof) against the chain
itself, with no call to the relay: the leaf hash from its fields, the Merkle path to the root, and
over the chain's JSON-RPC the transaction, its block, its Anchored event and the contract's record
of the root. --contract pins the relay's published contract address. Exit status 0: the proof
holds; 1: it does not (the reason is printed); 2: a usage error.`;

interface VerifyArgs {
  readonly rpc: string;
  readonly contract: string | undefined;
  readonly minConfirmations: number;
  readonly file: string;
}

function parseArgs(args: readonly string[], env: NodeJS.ProcessEnv): VerifyArgs {
  let parsed;
  try {
    parsed = parseCommandLine(
      args,
      { rpc: { type: 'string' }, contract: { type: 'string' }, 'min-confirmations': { type: 'string' } },
      { positionals: true },
    );
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${VERIFY_PROOF_USAGE}`);
  }
  const { values, positionals } = parsed;
  const rpc = values.rpc ?? env['RELAY_ANCHOR_RPC_URL'] ?? '';
  const contract = values.contract;
  const minConfirmations = values['min-confirmations'] === undefined ? 1 : Number(values['min-confirmations']);
  // The last file named wins, as it always has.
  const file = positionals.at(-1);
  if (!rpc) throw new UsageError(`--rpc (or RELAY_ANCHOR_RPC_URL) is needed\n\n${VERIFY_PROOF_USAGE}`);
  if (!/^https?:\/\//.test(rpc)) throw new UsageError('--rpc must be an http:// or https:// URL');
  if (!file) throw new UsageError(`name the proof file, or - for standard input\n\n${VERIFY_PROOF_USAGE}`);
  if (!Number.isInteger(minConfirmations) || minConfirmations < 1)
    throw new UsageError('--min-confirmations must be a whole number of at least 1');
  return { rpc, contract, minConfirmations, file };
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `relay verify-proof`: 0 if the proof holds on chain, 1 if not. */
export async function runVerifyProof(
  args: readonly string[],
  print: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    print(VERIFY_PROOF_USAGE);
    return 0;
  }
  const options = parseArgs(args, env);
  let proof: MessageProof;
  try {
    proof = JSON.parse(await readInput(options.file)) as MessageProof;
  } catch (error) {
    throw new UsageError(`the proof is not readable JSON: ${(error as Error).message}`);
  }
  try {
    checkProofMath(proof);
    const check = await checkProofOnChain(proof, chainAt(options.rpc, Number(proof.chain_id)), options.contract);
    if (check.confirmations < options.minConfirmations) {
      throw new ProofError(
        `the anchoring block has ${check.confirmations} confirmations, fewer than ${options.minConfirmations}`,
      );
    }
    print(
      `proof holds: message ${proof.leaf.message_id} is leaf ${proof.leaf_index} of ${proof.tree_size} under root ${proof.root}, ` +
        `anchored on chain ${proof.chain_id} by contract ${proof.contract} in transaction ${proof.tx_hash}, block ${proof.block_number} ` +
        `(${check.blockTime}, ${check.confirmations} confirmations)`,
    );
    return 0;
  } catch (error) {
    if (error instanceof ProofError || error instanceof TypeError) {
      print(`proof does NOT hold: ${error.message}`);
      return 1;
    }
    throw error;
  }
}
