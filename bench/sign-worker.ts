import { createHash, createPrivateKey, randomBytes, randomUUID, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { SignJob, SignResult } from './message-pool.js';

/**
 * Builds signed request bodies for the load, off the main thread: each message a compact JWS
 * ({alg: EdDSA, jwk} header) over {message_id, from, to, type, sha256, iat}, as a client signs it.
 */
function build(job: SignJob): SignResult {
  const senders = job.senders.map((peer) => ({
    address: peer.address,
    key: createPrivateKey({ key: peer.privateJwk, format: 'jwk' }),
    header: Buffer.from(JSON.stringify({ alg: 'EdDSA', jwk: peer.publicJwk })).toString('base64url'),
  }));
  // A few distinct ciphertexts are enough: the relay hashes every one it receives anyway.
  const contents = Array.from({ length: 16 }, () => {
    const content = randomBytes(Math.ceil((job.contentBytes * 3) / 4) + 3)
      .toString('base64url')
      .slice(0, job.contentBytes);
    return { content, sha256: createHash('sha256').update(content, 'utf8').digest('base64url') };
  });
  const iat = Math.floor(Date.now() / 1000);
  const bodies: Uint8Array[] = [];
  const ids: string[] = [];
  let n = job.firstMessage;
  for (let b = 0; b < job.bodies; b++) {
    const messages: string[] = [];
    for (let m = 0; m < job.perBody; m++, n++) {
      const sender = senders[n % senders.length]!;
      const to = job.recipients[n % job.recipients.length]!;
      const { content, sha256 } = contents[n % contents.length]!;
      const messageId = randomUUID();
      const payload = Buffer.from(
        JSON.stringify({ message_id: messageId, from: sender.address, to, type: 'text', sha256, iat }),
      ).toString('base64url');
      const input = `${sender.header}.${payload}`;
      const signature = `${input}.${sign(null, Buffer.from(input, 'ascii'), sender.key).toString('base64url')}`;
      messages.push(
        JSON.stringify({
          message_id: messageId,
          from_address: sender.address,
          to_address: to,
          message_type: 'text',
          encrypted_content: content,
          signature,
        }),
      );
      ids.push(messageId);
    }
    bodies.push(Buffer.from(job.wrap === 'batch' ? `{"messages":[${messages.join(',')}]}` : (messages[0] as string)));
  }
  return { bodies, ids };
}

parentPort?.postMessage(build(workerData as SignJob));
