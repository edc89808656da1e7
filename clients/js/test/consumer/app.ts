// A small app's use of the package, as its own TypeScript compile sees it:
// run-tests installs the packed package beside this file and compiles it.
import axios from "axios";
import { createClient, isEndedRefusal, isExpiredRefusal } from "@tessera/client";
import type {
  Authorization,
  Client,
  NewPasskey,
  Passkey,
  SecondFactor,
  TesseraError,
  TokenView,
  TotpEnrolment,
  User,
  WebAuthnCredentials,
} from "@tessera/client";
import { attachTessera } from "@tessera/client/axios";

const client: Client = createClient({
  baseUrl: "https://auth.example.com",
  transport: "header",
  apiBaseUrl: "",
  tokenOrigins: ["https://files.example.com"],
  refreshOn: (status, body) =>
    isExpiredRefusal(status, body) || (typeof body === "object" && body !== null && "error" in body),
  logoutOn: isEndedRefusal,
  onLogout: () => {},
  onRequest: ({ method, path, status, ms }) => console.log(method, path, status, ms),
});

const api = axios.create({ baseURL: "https://api.example.com" });
const detach: () => void = attachTessera(api, client);

export async function run(): Promise<void> {
  const view: TokenView = await client.login("alice", "correct horse battery staple");
  const username: unknown = view.claims.username;
  const token: string | null = await client.getAccessToken();
  const res: Response = await client.fetch("/orders", { method: "POST", body: "{}" });
  const other: Response = await client.fetch(new URL("https://files.example.com/a"));
  const auth: Authorization | null = await client.authorize("https://api.example.com/x", "GET");
  if (auth) {
    const headers: Record<string, string> = auth.headers;
    const again: boolean = await client.recover(auth.ticket, 401, { reason: "expired" });
    console.log(headers, again);
  }
  const user: User | null = await client.restore();
  const orders = await api.get<{ id: number }[]>("/orders");
  const first: number | undefined = orders.data[0]?.id;
  console.log(username, token, res.status, other.ok, user, first, client.loggedIn);
  detach();
}

// The types say what is refused (these lines fail the compile if they are accepted).
// @ts-expect-error: a transport is "header" or "cookie"
createClient({ transport: "bearer" });
// @ts-expect-error: tokenOrigins is a list
createClient({ tokenOrigins: "https://files.example.com" });
// @ts-expect-error: the adapter takes an axios instance
attachTessera({}, client);
// @ts-expect-error: getAccessToken resolves to string | null
const wrong: Promise<string> = client.getAccessToken();
console.log(wrong);

// A login that may ask for a second factor, and TOTP enrolment.
export async function loginWithSecondFactor(askCode: () => Promise<string>): Promise<TokenView> {
  try {
    return await client.login("alice", "correct horse battery staple");
  } catch (e) {
    const error = e as TesseraError;
    if (error.code !== "mfa_required" || !error.mfaToken) throw e;
    const methods: Array<"totp" | "recovery_code" | "passkey"> = error.methods ?? [];
    if (methods.includes("passkey")) return client.verifyWithPasskey(error.mfaToken);
    const factor: SecondFactor = methods.includes("totp") ? { code: await askCode() } : { recoveryCode: "k7m2p-x9qrt" };
    return client.verifySecondFactor(error.mfaToken, factor);
  }
}

export async function enrol(code: string): Promise<string[]> {
  const started: TotpEnrolment = await client.startTotpEnrolment();
  const enrolled: TotpEnrolment = await client.startTotpEnrolment("q8Z-enrolment-token");
  console.log(enrolled.secret, await client.confirmTotp(code, "q8Z-enrolment-token"));
  console.log(started.otpauth_uri, started.qr_svg.length, started.secret);
  const recovery: string[] = await client.confirmTotp(code);
  const fresh: string[] = await client.regenerateRecoveryCodes();
  await client.removeTotp({ recoveryCode: fresh[0] ?? "" });
  return recovery;
}

// @ts-expect-error: a second factor is a code or a recovery code, not both
const both: SecondFactor = { code: "123456", recoveryCode: "k7m2p-x9qrt" };
console.log(both);

// Passkeys: registration (with the session, or an enrolment token), the list,
// removal, a login's second step, and a login with the passkey alone.
export async function passkeys(enrolmentToken: string): Promise<TokenView> {
  const added: NewPasskey = await client.registerPasskey({ name: "laptop" });
  const codes: string[] | undefined = added.recovery_codes;
  const enrolled: NewPasskey = await client.registerPasskey({ enrolmentToken });
  await client.registerPasskey();
  const listed: Passkey[] = await client.listPasskeys();
  const lastUsed: number | null = listed[0]?.last_used_at ?? null;
  console.log(codes, enrolled.id, lastUsed, added.created_at);
  await client.deletePasskey(added.id);
  return client.loginWithPasskey();
}

// A stand-in for navigator.credentials (e.g. in tests).
const standIn: WebAuthnCredentials = {
  create: async () => null,
  get: async () => null,
};
createClient({ credentials: standIn });
// @ts-expect-error: a passkey's name is a string
client.registerPasskey({ name: 7 });
// @ts-expect-error: listPasskeys resolves to passkeys, not their ids
const ids: Promise<string[]> = client.listPasskeys();
console.log(ids);
