// A real OpenID Provider for the SSO tests: oidc-provider (the certified Node implementation) under a
// Keycloak-shaped issuer, http://<host>:<port>/realms/<realm>.
//
// Environment: PORT, HOST (default 127.0.0.1), REALM (default "test"), OIDC_CLIENTS (JSON list of client
// metadata: client_id, client_secret, redirect_uris, token_endpoint_auth_method).
// The login page (GET /interaction/<uid>) lists the users below; POSTing a login name signs that user in and
// finishes the interaction (consent is implied: a first-party provider, as in a team's own Keycloak). The
// "cancel" button aborts with error=access_denied. Keys are generated at start (RS256).
import { generateKeyPairSync } from "node:crypto";
import http from "node:http";

import Provider from "oidc-provider";

const USERS = {
  alice: { sub: "sub-alice", email: "alice@example.com", email_verified: true, name: "Alice Admin", groups: ["/lf-admins"] },
  bob: { sub: "sub-bob", email: "bob@example.com", email_verified: true, name: "Bob Dev", groups: ["lf-dev"] },
  carol: { sub: "sub-carol", email: "carol@example.com", email_verified: true, name: "Carol", groups: [] },
  // the same email as an account that already exists in Lightfuse (the tests' LANGFUSE_INIT_USER_EMAIL)
  admin: { sub: "sub-admin", email: "init-admin@example.com", email_verified: true, name: "Init Admin", groups: [] },
  squatter: { sub: "sub-squatter", email: "init-admin@example.com", email_verified: false, name: "Not Verified", groups: [] },
  dana: { sub: "sub-dana", email: "dana@corp.example", email_verified: true, name: "Dana", groups: ["lf-dev"] },
};

const port = Number(process.env.PORT || 0);
const host = process.env.HOST || "127.0.0.1";
const realm = process.env.REALM || "test";
const prefix = `/realms/${realm}`;
const issuer = `http://${host}:${port}${prefix}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || "[]");

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-key-1", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  scopes: ["openid", "email", "profile", "groups"],
  // groups released with the profile scope, as a Keycloak group mapper on the default client scope does
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "groups"], groups: ["groups"] },
  cookies: { keys: ["lightfuse-test-cookie-key"] },
  features: { devInteractions: { enabled: false } },
  pkce: { methods: ["S256"], required: () => false },
  interactions: { url: (_ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const user = Object.values(USERS).find((u) => u.sub === sub);
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ ...user }) };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    await grant.save();
    return grant;
  },
});
// plain http behind no proxy: oidc-provider must not insist on https for this lab
provider.proxy = false;

const callback = provider.callback();

function page(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html><head><title>Test IdP</title></head><body>${html}</body></html>`);
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, "wrong interaction");
  if (req.method === "GET") {
    const buttons = Object.keys(USERS)
      .map((login) => `<button type="submit" name="login" value="${login}" data-login="${login}">${login}</button>`)
      .join(" ");
    return page(res, 200, `<h1>Test IdP (${realm})</h1>
      <form method="post" action="${prefix}/interaction/${uid}/login">${buttons}</form>
      <form method="post" action="${prefix}/interaction/${uid}/abort"><button type="submit" id="cancel">cancel</button></form>`);
  }
  if (action === "abort") {
    return provider.interactionFinished(req, res, { error: "access_denied", error_description: "cancelled" }, { mergeWithLastSubmission: false });
  }
  const login = (await readForm(req)).get("login");
  const user = USERS[login];
  if (!user) return page(res, 400, "unknown user");
  return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.url === "/health") return page(res, 200, "ok");
    if (req.url === "/favicon.ico") { res.writeHead(204); return res.end(); }
    if (!req.url.startsWith(prefix)) return page(res, 404, "not found");
    const rest = req.url.slice(prefix.length) || "/";
    const match = rest.match(/^\/interaction\/([^/?]+)(?:\/(login|abort))?/);
    if (match) return await interaction(req, res, match[1], match[2]);
    // mounted under the realm path, the way Express mounts it: oidc-provider reads originalUrl for its own URLs
    req.originalUrl = req.url;
    req.url = rest;
    req.baseUrl = prefix;
    return callback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) page(res, 500, "error");
  }
});

server.listen(port, host, () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
