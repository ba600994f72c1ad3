/** Self-signed certificates for 127.0.0.1, made with the openssl command for each test run. */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface Certificate {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as Node's TLS peer certificate reports it. */
  fingerprint: string;
}

/** Writes `cert.pem` and `key.pem` into `dir` (replacing any there) and returns them. */
export function makeCertificate(dir: string): Certificate {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}
