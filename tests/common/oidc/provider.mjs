// A real OpenID provider for Portcullis's workload-identity tests: oidc-provider (the certified
// Node.js implementation) with discovery at http://127.0.0.1:PORT and the client-credentials grant
// issuing RFC 9068 JWT access tokens signed with RS256, as a CI platform's token service would.
//
//   node provider.mjs PORT KEY_DIR KID[,KID...]
//
// Signing keys are RSA keys named by KID, kept in KEY_DIR/KID.json (created when absent), so a
// restart with other KIDs rotates keys: the first KID signs, all are published in the JWKS.
// The test chooses each token's audience, lifetime and extra claims with the request headers
// x-test-audience, x-test-ttl and x-test-claims (JSON), which only this test provider reads.
// With CONSOLE_REDIRECT_URI set it is also the company IdP people sign in to Portcullis's web
// console with: a confidential client `console` (secret `console-secret`) for the authorization
// code flow with that redirect URI, oidc-provider's development login and consent pages (any
// password signs in), and accounts whose claims come from CONSOLE_ACCOUNTS (JSON, login → extra
// claims such as `groups`); every account has `preferred_username` = its login unless it says
// otherwise. ID tokens then carry the profile and groups claims.
// Prints "ready" on stdout once listening.

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Provider from 'oidc-provider';

const [port, keyDir, kids] = process.argv.slice(2);
if (!port || !keyDir || !kids) {
  console.error('usage: node provider.mjs PORT KEY_DIR KID[,KID...]');
  process.exit(2);
}

function signingKey(kid) {
  const file = join(keyDir, `${kid}.json`);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
    writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

const RESOURCE = 'urn:portcullis:test';
const issuer = `http://127.0.0.1:${port}`;

const consoleRedirect = process.env.CONSOLE_REDIRECT_URI;
const accounts = JSON.parse(process.env.CONSOLE_ACCOUNTS || '{}');
const clients = [{
  client_id: 'ci',
  client_secret: 'ci-secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_post',
}];
if (consoleRedirect) {
  clients.push({
    client_id: 'console',
    client_secret: 'console-secret',
    grant_types: ['authorization_code'],
    redirect_uris: [consoleRedirect],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

const provider = new Provider(issuer, {
  jwks: { keys: kids.split(',').map(signingKey) },
  clients,
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  scopes: ['openid', 'profile', 'groups', 'push'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, preferred_username: id, ...(accounts[id] || {}) }),
  }),
  features: {
    devInteractions: { enabled: Boolean(consoleRedirect) },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx) => ({
        scope: 'push',
        audience: ctx.get('x-test-audience') || 'registry',
        accessTokenFormat: 'jwt',
        accessTokenTTL: Number(ctx.get('x-test-ttl') || 300),
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx) => {
    const claims = ctx.get('x-test-claims');
    return claims ? JSON.parse(claims) : undefined;
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});
