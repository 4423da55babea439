// One oauth2-mock-server dressed as one of Parley's four providers: the provider's own endpoint
// paths, its client authentication, its token and profile JSON (from tests/data/), on 127.0.0.1.
//
//   node mock-provider.mjs <wordpress|google|twitter|facebook> [client_id] [client_secret]
//
// Prints one JSON line {"url": "http://127.0.0.1:<port>"} once listening. oauth2-mock-server
// accepts any client; the checks below make it refuse what the real provider refuses.
// POST /__next with {"authorize": {...}} / {"token": {...}} / {"profile": {...}} sets what the next
// such request answers (one time), so a test can play a cancel, an invalid_client or a slow API.
import http from "node:http";
import { readFileSync } from "node:fs";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";

const [provider, clientId = "parley-test-client", clientSecret = "parley-test-secret"] =
  process.argv.slice(2);
const data = (name) => JSON.parse(readFileSync(new URL(`../data/${name}`, import.meta.url), "utf8"));
const GRAPH = process.env.FACEBOOK_GRAPH_VERSION || "v19.0";

const SHAPES = {
  wordpress: {
    endpoints: { authorize: "/oauth2/authenticate", token: "/oauth2/token", userinfo: "/rest/v1.1/me" },
    clientAuth: "client_secret_post",
    token: data("wordpress_token.json"),
    profile: data("wordpress_me.json"),
  },
  google: {
    endpoints: { authorize: "/o/oauth2/v2/auth", token: "/token", userinfo: "/v1/userinfo",
                 jwks: "/oauth2/v3/certs" },
    clientAuth: "client_secret_basic",
    pkce: true,
    openid: true,
    profile: data("google_userinfo.json"),
  },
  twitter: {
    endpoints: { authorize: "/i/oauth2/authorize", token: "/2/oauth2/token", userinfo: "/2/users/me" },
    clientAuth: "client_secret_basic",
    pkce: true,
    token: data("twitter_token.json"),
    profile: data("twitter_users_me.json"),
  },
  facebook: {
    endpoints: { authorize: `/${GRAPH}/dialog/oauth`, token: `/${GRAPH}/oauth/access_token`,
                 userinfo: `/${GRAPH}/me` },
    clientAuth: "client_secret_post",
    token: data("facebook_token.json"),
    profile: data("facebook_me.json"),
  },
};
const shape = SHAPES[provider];
if (!shape) {
  console.error(`usage: node mock-provider.mjs <${Object.keys(SHAPES).join("|")}>`);
  process.exit(2);
}

const issuer = new OAuth2Issuer();
await issuer.keys.generate("RS256");
const service = new OAuth2Service(issuer, shape.endpoints);
const issued = new Set(); // access tokens handed out: the profile endpoint accepts only these
const next = {}; // one-shot overrides set through POST /__next
const take = (name) => { const value = next[name]; delete next[name]; return value; };
const subject = String(shape.openid ? shape.profile.sub : (shape.profile.id ?? shape.profile.ID ??
  shape.profile.data?.id));

service.on("beforeAuthorizeRedirect", (redirect, req) => {
  const override = take("authorize");
  if (shape.pkce && req.query.code_challenge_method !== "S256") {
    redirect.url.searchParams.delete("code");
    redirect.url.searchParams.set("error", "invalid_request");
    redirect.url.searchParams.set("error_description", "Missing required parameter [code_challenge].");
  } else if (override && override.error) {
    redirect.url.searchParams.delete("code");
    redirect.url.searchParams.set("error", override.error);
    if (override.error_description) {
      redirect.url.searchParams.set("error_description", override.error_description);
    }
  }
});

service.on("beforeTokenSigning", (token) => {
  token.payload.sub = subject;
  if (shape.openid && token.payload.aud) { // the id_token: Google puts the profile in it
    const { sub, ...claims } = shape.profile;
    Object.assign(token.payload, claims, { azp: token.payload.aud });
  }
});

function clientAuthFailure(req) {
  const header = req.headers.authorization || "";
  if (shape.clientAuth === "client_secret_basic") {
    if (!header.startsWith("Basic ")) {
      return { error: "unauthorized_client", error_description: "Missing valid authorization header" };
    }
    const [id, secret] = Buffer.from(header.slice(6), "base64").toString().split(":");
    if (decodeURIComponent(id) !== clientId || decodeURIComponent(secret) !== clientSecret) {
      return { error: "invalid_client", error_description: "Client authentication failed" };
    }
  } else if (req.body.client_id !== clientId || req.body.client_secret !== clientSecret) {
    return { error: "invalid_client", error_description: "Unknown client or wrong client_secret" };
  }
  return null;
}

service.on("beforeResponse", (response, req) => {
  const override = take("token");
  const failure = clientAuthFailure(req);
  if (failure) {
    response.statusCode = 401;
    response.body = failure;
    return;
  }
  if (shape.pkce && !req.body.code_verifier) {
    response.statusCode = 400;
    response.body = { error: "invalid_request", error_description: "Missing required parameter [code_verifier]." };
    return;
  }
  if (override) {
    response.statusCode = override.status ?? 400;
    response.body = override.body ?? {};
    return;
  }
  issued.add(response.body.access_token);
  if (!shape.openid) { // plain OAuth 2.0 providers answer in their own shape, with no id_token
    response.body = { ...shape.token, access_token: response.body.access_token };
  }
});

service.on("beforeUserinfo", (response, req) => {
  const override = take("profile");
  const token = (req.headers.authorization || "").replace(/^Bearer /i, "");
  if (!issued.has(token)) {
    response.statusCode = 401;
    response.body = { error: "invalid_token", message: "The access token is missing or unknown." };
  } else if (override) {
    response.statusCode = override.status ?? 500;
    response.body = override.body ?? { error: "server_error" };
  } else {
    response.body = shape.profile;
  }
});

const handle = service.requestHandler;
const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url === "/__next") {
    let body = "";
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", () => {
      Object.assign(next, JSON.parse(body || "{}"));
      res.writeHead(204).end();
    });
    return;
  }
  const delay = req.url.split("?")[0] === shape.endpoints.userinfo ? take("profileDelay") : 0;
  if (delay) setTimeout(() => handle(req, res), delay * 1000);
  else handle(req, res);
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  issuer.url = `http://127.0.0.1:${port}`; // oauth2-mock-server would say "localhost"
  console.log(JSON.stringify({ url: issuer.url, provider, endpoints: shape.endpoints }));
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
