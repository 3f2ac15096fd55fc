import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DevCerts {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * A local certificate authority and a server certificate for localhost and 127.0.0.1, made with
 * the openssl command-line tool (P-256 keys). Existing files are kept unless `force`.
 */
export async function makeDevCerts(dir: string, force = false): Promise<DevCerts & { created: boolean }> {
  const paths = { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
  if (!force && existsSync(paths.ca) && existsSync(paths.cert) && existsSync(paths.key))
    return { ...paths, created: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, 'ca.key');
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    caKey,
    '-out',
    paths.ca,
    '-days',
    '3650',
    '-subj',
    '/CN=Relay development CA',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', paths.key, '-out', csr, '-subj', '/CN=localhost']);
  await writeFile(
    ext,
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    paths.ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    paths.cert,
    '-days',
    '825',
    '-extfile',
    ext,
  ]);
  await Promise.all([rm(csr), rm(ext)]);
  return { ...paths, created: true };
}
