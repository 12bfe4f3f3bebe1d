-- Which key-identifying fields a realm's tokens carry in their JWT header:
--   x5c: the certificate chain and the libtrust `kid` (registry 2.8 and 3.x, through rootcertbundle);
--   kid: the `kid` alone (registry 2.8 through rootcertbundle, 3.x through jwks).
ALTER TABLE realms ADD COLUMN token_header TEXT NOT NULL DEFAULT 'x5c'
    CHECK (token_header IN ('x5c', 'kid'));
