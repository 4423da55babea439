// A strict, OpenID-certified authorization server (panva's oidc-provider, major version 8) playing
// Google (OpenID Connect with discovery) and X (plain OAuth 2.0 + PKCE, profile at /2/users/me).
//
//   node oidc-server.mjs <app base URL, e.g. http://127.0.0.1:5123>
//
// Strict: the client secret is checked (HTTP Basic only), redirect URIs must match exactly, PKCE
// with S256 is required of every client. The login and consent screens approve at once, except
// for the account "cancel" (send login_hint=cancel), who presses Cancel: access_denied.
// Prints one JSON line {"url": …, "clients": {…}} once listening on 127.0.0.1.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const app = process.argv[2];
if (!app) {
  console.error("usage: node oidc-server.mjs <app base URL>");
  process.exit(2);
}
const SECRET = process.env.OIDC_CLIENT_SECRET || "parley-strict-secret-0123456789abcdef";
const clients = {
  google: { client_id: "parley-google", client_secret: SECRET },
  twitter: { client_id: "parley-twitter", client_secret: SECRET },
};

const people = {
  "google-ayesha": {
    sub: "google-ayesha", name: "Ayesha Khan", email: "ayesha.khan@example.com",
    email_verified: true, picture: "https://lh3.googleusercontent.com/a/ayesha=s96-c",
  },
  "x-zara": { sub: "x-zara", name: "Zara Malik", username: "zaramalik",
              profile_image_url: "https://pbs.twimg.com/profile_images/1/zara_normal.jpg" },
};

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), use: "sig", kid: "parley-test" };

const server = (await import("node:http")).createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    { ...clients.google, redirect_uris: [`${app}/auth/google/callback`],
      token_endpoint_auth_method: "client_secret_basic", scope: "openid email profile" },
    { ...clients.twitter, redirect_uris: [`${app}/auth/twitter/callback`],
      token_endpoint_auth_method: "client_secret_basic", scope: "users.read tweet.read" },
  ],
  clientAuthMethods: ["client_secret_basic"],
  pkce: { methods: ["S256"], required: () => true },
  scopes: ["openid", "offline_access", "users.read", "tweet.read"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "picture"] },
  jwks: { keys: [jwk] },
  cookies: { keys: ["parley-oidc-test-cookie-key"] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: () => ({ ...person }) };
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600,
         Grant: 600 },
});
provider.proxy = false;
provider.on("server_error", (ctx, err) => console.error("oidc-provider server_error:", err));

// The login and consent screens: approve at once as the client's test person, or cancel.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (params.login_hint === "cancel") {
    result = { error: "access_denied", error_description: "End-User aborted interaction" };
  } else if (prompt.name === "login") {
    result = { login: { accountId: params.client_id === clients.google.client_id
      ? "google-ayesha" : "x-zara" } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    result = { consent: { grantId: await grant.save() } };
  }
  const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result,
    { mergeWithLastSubmission: true });
  ctx.status = 303;
  ctx.redirect(redirectTo);
});

// X's profile endpoint, behind a real access token with the users.read scope.
provider.use(async (ctx, next) => {
  if (ctx.path !== "/2/users/me") return next();
  const value = (ctx.get("authorization") || "").replace(/^Bearer /i, "");
  const token = value ? await provider.AccessToken.find(value) : undefined;
  if (!token || !token.scopes.has("users.read")) {
    ctx.status = 401;
    ctx.body = { title: "Unauthorized", type: "about:blank", status: 401, detail: "Unauthorized" };
    return;
  }
  const person = people[token.accountId];
  const fields = new Set((ctx.query["user.fields"] || "").split(","));
  const data = { id: person.sub, name: person.name, username: person.username };
  if (fields.has("profile_image_url")) data.profile_image_url = person.profile_image_url;
  ctx.body = { data };
});

server.on("request", provider.callback());
console.log(JSON.stringify({ url: issuer, clients }));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
