// Conformance: @azure/communication-identity 1.3.1 (the official JS client) against callsign, over http.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CommunicationIdentityClient } from "@azure/communication-identity";
import { AzureKeyCredential } from "@azure/core-auth";
import { decodeJwt, startServer } from "../lib/harness.js";

const ID_RE = /^8:acs:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FOREIGN = "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000";

let server;
let client;

before(async () => {
  server = await startServer();
  client = new CommunicationIdentityClient(server.endpoint, new AzureKeyCredential(server.accessKey), {
    allowInsecureConnection: true,
  });
});

after(async () => {
  if (server) await server.stop();
});

function checkToken(result, userId, scopes, minutes, issuedAfterMs) {
  assert.equal(typeof result.token, "string");
  assert.ok(result.expiresOn instanceof Date, "expiresOn should be parsed into a Date");
  assert.ok(!Number.isNaN(result.expiresOn.getTime()), "expiresOn is an invalid date");
  const { header, payload } = decodeJwt(result.token);
  assert.equal(header.alg, "RS256");
  assert.equal(payload.exp * 1000, result.expiresOn.getTime(), "exp must equal expiresOn");
  const expected = issuedAfterMs / 1000 + minutes * 60;
  assert.ok(
    Math.abs(payload.exp - expected) <= 0.05 * minutes * 60,
    `exp ${payload.exp} not within 5% of now+${minutes}min (${expected})`,
  );
  assert.equal(payload.skypeid, userId.slice(2));
  assert.deepEqual(payload.acsScope.split(",").sort(), [...scopes].sort());
  assert.ok(payload.jti, "token has a jti");
  return payload;
}

async function rejectsWith(promise, statusCode, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, "RestError", `expected RestError, got ${err}`);
    assert.equal(err.statusCode, statusCode, `statusCode ${err.statusCode}: ${err.message}`);
    if (code) assert.equal(err.code, code, `code ${err.code}: ${err.message}`);
    return true;
  });
}

describe("CommunicationIdentityClient (api-version 2023-10-01 default)", () => {
  test("createUser returns a communication user id", async () => {
    const a = await client.createUser();
    const b = await client.createUser();
    assert.match(a.communicationUserId, ID_RE);
    assert.match(b.communicationUserId, ID_RE);
    assert.notEqual(a.communicationUserId, b.communicationUserId);
  });

  test("createUserAndToken with chat & voip, 60 minutes", async () => {
    const now = Date.now();
    const res = await client.createUserAndToken(["chat", "voip"], { tokenExpiresInMinutes: 60 });
    assert.match(res.user.communicationUserId, ID_RE);
    checkToken(res, res.user.communicationUserId, ["chat", "voip"], 60, now);
  });

  test("createUserAndToken default expiry is 24 h", async () => {
    const now = Date.now();
    const res = await client.createUserAndToken(["chat"]);
    checkToken(res, res.user.communicationUserId, ["chat"], 1440, now);
  });

  test("getToken, with join scopes and custom expiry", async () => {
    const user = await client.createUser();
    const now = Date.now();
    checkToken(await client.getToken(user, ["voip"]), user.communicationUserId, ["voip"], 1440, now);
    checkToken(
      await client.getToken(user, ["chat.join", "voip.join"], { tokenExpiresInMinutes: 120 }),
      user.communicationUserId,
      ["chat.join", "voip.join"],
      120,
      now,
    );
    checkToken(
      await client.getToken(user, ["chat.join.limited"], { tokenExpiresInMinutes: 1440 }),
      user.communicationUserId,
      ["chat.join.limited"],
      1440,
      now,
    );
  });

  test("revokeTokens, then a new token can be issued", async () => {
    const now = Date.now();
    const { user, token: old } = await client.createUserAndToken(["chat"]);
    await client.revokeTokens(user);
    const fresh = await client.getToken(user, ["chat"]);
    checkToken(fresh, user.communicationUserId, ["chat"], 1440, now);
    assert.notEqual(fresh.token, old);
  });

  test("deleteUser, then getToken rejects with 404 IdentityNotFound", async () => {
    const user = await client.createUser();
    await client.deleteUser(user);
    await rejectsWith(client.getToken(user, ["chat"]), 404, "IdentityNotFound");
    await rejectsWith(client.revokeTokens(user), 404, "IdentityNotFound");
  });

  test("bad scopes reject with 400", async () => {
    const user = await client.createUser();
    await rejectsWith(client.getToken(user, []), 400, "ValidationError");
    await rejectsWith(client.getToken(user, ["notascope"]), 400, "ValidationError");
    await rejectsWith(client.createUserAndToken(["notascope"]), 400, "ValidationError");
  });

  test("expiry outside [60, 1440] rejects with 400", async () => {
    const user = await client.createUser();
    await rejectsWith(client.getToken(user, ["chat"], { tokenExpiresInMinutes: 59 }), 400, "ValidationError");
    await rejectsWith(client.createUserAndToken(["chat"], { tokenExpiresInMinutes: 1441 }), 400, "ValidationError");
  });

  test("identity of another resource rejects with 401 IdentityNotOwned", async () => {
    const other = { communicationUserId: FOREIGN };
    await rejectsWith(client.getToken(other, ["chat"]), 401, "IdentityNotOwned");
    await rejectsWith(client.revokeTokens(other), 401, "IdentityNotOwned");
    await rejectsWith(client.deleteUser(other), 401, "IdentityNotOwned");
  });

  test("wrong access key rejects with 401 Denied", async () => {
    const bad = new CommunicationIdentityClient(
      server.endpoint,
      new AzureKeyCredential(Buffer.alloc(32, 7).toString("base64")),
      { allowInsecureConnection: true },
    );
    await rejectsWith(bad.createUser(), 401, "Denied");
  });

  test("connection string constructor works too", async () => {
    const viaConn = new CommunicationIdentityClient(server.connectionString, { allowInsecureConnection: true });
    const now = Date.now();
    const res = await viaConn.createUserAndToken(["voip"]);
    checkToken(res, res.user.communicationUserId, ["voip"], 1440, now);
  });
});
