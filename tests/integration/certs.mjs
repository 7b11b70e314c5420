// certs.mjs - test certificates made with openssl at test time (nothing
// secret is committed): a CA, a server certificate for a DNS name, client
// certificates, and a second, unrelated CA for the impostor cases.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function ossl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** makeCa writes NAME.crt / NAME.key (EC P-256) in dir. */
export function makeCa(dir, name) {
  fs.mkdirSync(dir, { recursive: true });
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`), name };
}

/** makeCert writes NAME.crt / NAME.key signed by ca, for dns (and ip, if
 * given: SANs) and usage 'server' or 'client'. */
export function makeCert(dir, ca, name, { dns = name, ip, usage = 'server' } = {}) {
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyAgreement',
    `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    `subjectAltName=DNS:${dns}${ip ? `,IP:${ip}` : ''}`,
  ].join('\n'));
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${dns}`], dir);
  ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', ext], dir);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}
