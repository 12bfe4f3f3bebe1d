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

const provider = new Provider(issuer, {
  jwks: { keys: kids.split(',').map(signingKey) },
  clients: [{
    client_id: 'ci',
    client_secret: 'ci-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  scopes: ['push'],
  features: {
    devInteractions: { enabled: false },
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
