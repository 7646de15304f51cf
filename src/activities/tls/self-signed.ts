/**
 * A self-signed certificate made in the process, without the openssl binary (the engine's image has
 * none): an RSA key from node:crypto, the X.509 v3 structure encoded with @peculiar/asn1-x509, and
 * the SHA-256 signature made by node:crypto. What it makes matches what
 * `openssl req -x509 -nodes -newkey rsa:2048 -sha256 -days N -subj ... -addext subjectAltName=...`
 * makes: a PKCS#8 key, a v3 certificate with the subject as issuer, subject and authority key
 * identifiers, `basicConstraints` critical CA:TRUE and the subjectAltName given.
 * `makeIssuedCertificate` makes one signed by a CA instead, as `openssl x509 -req -CA ... -CAkey ...`
 * does (a leaf unless asked for a CA): what a Docker daemon's and its clients' TLS is built from.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';

const generateRsa = promisify(generateKeyPair);

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
/** Attribute types a subject may carry, in openssl's `-subj` short names. */
const ATTRIBUTE_OIDS = { CN: '2.5.4.3', O: '2.5.4.10', OU: '2.5.4.11' } as const;
export type SubjectAttribute = keyof typeof ATTRIBUTE_OIDS;

export interface SelfSignedRequest {
  /** The subject (also the issuer), in order: e.g. `[['CN', 'alfred.example.com'], ['O', '...']]`. */
  subject: Array<[SubjectAttribute, string]>;
  /** subjectAltName in openssl's `-addext` form: `IP:127.0.0.1,DNS:localhost`. */
  altNames?: string;
  /** Validity from now, in days (openssl's `-days`). */
  days: number;
  /** RSA modulus length; 2048 as the seed's `-newkey rsa:2048`. */
  modulusLength?: number;
}

/** A certificate signed by a CA (`openssl x509 -req -CA ca.crt -CAkey ca.key ...`) rather than by its own key. */
export interface IssuedRequest extends SelfSignedRequest {
  /** The CA's certificate and key. */
  issuer: SelfSigned;
  /** basicConstraints CA:TRUE (an intermediate CA); default false, a leaf. */
  ca?: boolean;
}

export interface SelfSigned {
  /** PEM `CERTIFICATE`. */
  cert: string;
  /** PEM `PRIVATE KEY` (PKCS#8, unencrypted, as openssl's `-nodes`). */
  key: string;
}

/** `IP:127.0.0.1,DNS:localhost` → general names; anything else is refused, never guessed at. */
export function parseAltNames(altNames: string): GeneralName[] {
  return altNames.split(',').map((raw) => {
    const part = raw.trim();
    const i = part.indexOf(':');
    const kind = part.slice(0, i);
    const value = part.slice(i + 1);
    if (kind === 'IP' && net.isIP(value)) return new GeneralName({ iPAddress: value });
    if (
      kind === 'DNS' &&
      /^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/.test(value) &&
      value.length <= 253
    ) {
      return new GeneralName({ dNSName: value });
    }
    throw new Error(`"${part.slice(0, 80)}" is not a subjectAltName entry of the form DNS:<host> or IP:<address>`);
  });
}

function subjectName(subject: SelfSignedRequest['subject']): Name {
  if (subject.length === 0) throw new Error('a certificate needs a subject');
  return new Name(
    subject.map(([attr, value]) => {
      if (value === '' || value.length > 64) throw new Error(`subject ${attr} must have 1 to 64 characters`);
      return new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: ATTRIBUTE_OIDS[attr], value: new AttributeValue({ utf8String: value }) }),
      ]);
    }),
  );
}

function extension(extnID: string, value: unknown, critical = false): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** A positive serial number of 16 random bytes, as openssl makes them. */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return new Uint8Array(bytes).buffer;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits, as openssl computes it. */
function keyIdentifier(publicKey: KeyObject): { spki: SubjectPublicKeyInfo; keyId: Buffer } {
  const spki = AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
  return { spki, keyId: createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest() };
}

interface Signer {
  name: Name;
  keyId: Buffer;
  privateKey: KeyObject;
}

/** The certificate of `publicKey`, signed by `signer`, or by `ownKey` (self-signed) without one. */
function certificateFor(req: SelfSignedRequest, publicKey: KeyObject, signer: Signer | undefined, ownKey: KeyObject, ca: boolean, now: Date): string {
  const { spki, keyId } = keyIdentifier(publicKey);
  const name = subjectName(req.subject);
  const issuer = signer ?? { name, keyId, privateKey: ownKey };
  const extensions = [
    extension(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(keyId)),
    extension(id_ce_authorityKeyIdentifier, new AuthorityKeyIdentifier({ keyIdentifier: new OctetString(issuer.keyId) })),
    extension(id_ce_basicConstraints, new BasicConstraints({ cA: ca }), true),
  ];
  if (req.altNames)
    extensions.push(extension(id_ce_subjectAltName, new SubjectAlternativeName(parseAltNames(req.altNames))));
  const algorithm = new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null });
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer: issuer.name,
    subject: name,
    validity: new Validity({ notBefore: now, notAfter: new Date(now.getTime() + req.days * 86_400_000) }),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbs = Buffer.from(AsnConvert.serialize(tbsCertificate));
  const signature = sign('sha256', tbs, issuer.privateKey);
  const cert = new Certificate({
    tbsCertificate,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return pem('CERTIFICATE', AsnConvert.serialize(cert));
}

function checkRequest(req: SelfSignedRequest): void {
  if (!(req.days > 0)) throw new Error('a certificate must be valid for a positive number of days');
  // Validate before the key is made: a bad name should not cost a key generation.
  subjectName(req.subject);
  if (req.altNames) parseAltNames(req.altNames);
}

/** A fresh RSA key and a certificate for it signed by `issuer`, valid from now for `days`. */
export async function makeIssuedCertificate(req: IssuedRequest): Promise<SelfSigned> {
  checkRequest(req);
  const issuerKey = createPrivateKey(req.issuer.key);
  const issuerCert = AsnConvert.parse(new Uint8Array(new X509Certificate(req.issuer.cert).raw).buffer, Certificate);
  const signer = { name: issuerCert.tbsCertificate.subject, keyId: keyIdentifier(createPublicKey(issuerKey)).keyId, privateKey: issuerKey };
  const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: req.modulusLength ?? 2048 });
  const cert = certificateFor(req, publicKey, signer, privateKey, req.ca ?? false, new Date());
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** A fresh RSA key and a self-signed certificate for it, valid from now for `days`. */
export async function makeSelfSignedCertificate(req: SelfSignedRequest): Promise<SelfSigned> {
  checkRequest(req);
  const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: req.modulusLength ?? 2048 });
  const cert = certificateFor(req, publicKey, undefined, privateKey, true, new Date());
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
