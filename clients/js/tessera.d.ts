// TypeScript declarations for Tessera's browser client: the npm package
// @tessera/client, also served by the server at /static/tessera.js.
//
//   import { createClient } from "@tessera/client";
//   // or "/static/tessera.js", with this file beside the module, or mapped
//   // to it in tsconfig "paths".

/** A JWT's decoded JOSE header (docs/API.md, "Header"). */
export interface TokenHeader {
  /** The algorithm of the signing key, e.g. "HS256", "RS256", "EdDSA". */
  alg: string;
  /** Always "JWT". */
  typ: "JWT";
  /** The id of the signing key. */
  kid: string;
}

/** A JWT's decoded claims (docs/API.md, "Claims"). */
export interface TokenClaims {
  token_type: "access" | "refresh";
  /** Expiry, integer seconds since the epoch (the server's clock). */
  exp: number;
  /** Issue time, integer seconds since the epoch (the server's clock). */
  iat: number;
  /** The token's id: 32 lowercase hex characters. */
  jti: string;
  /** The user's id as a string. */
  sub: string;
  /** The login (family) this token descends from. */
  fid: string;
  /** The user's token version when the token was issued. */
  ver: number;
  /** Access tokens only. */
  username?: string;
  /** Access tokens only: true straight from a password login, false after a refresh. */
  fresh?: boolean;
  /** Cookie transport only: the value `X-CSRF-TOKEN` echoes. */
  csrf?: string;
  iss?: string;
  aud?: string | string[];
  email?: string;
  is_staff?: boolean;
  /** The user's id as a number, under the configured `user_id_claim` (default `user_id`), and any other claim. */
  [claim: string]: unknown;
}

/** What the client shows of its access token. Decoded, not verified: for display. */
export interface TokenView {
  header: TokenHeader;
  claims: TokenClaims;
}

/** The user, as `GET /api/auth/me` answers. */
export interface User {
  id: number;
  username: string;
  email: string;
  is_staff: boolean;
  is_active: boolean;
  /** RFC 3339, in seconds: "2025-01-31T12:00:00Z". */
  date_joined: string;
  /** RFC 3339, or null before the first login. */
  last_login: string | null;
  /** The user followed a link mailed to `email`. */
  email_verified: boolean;
}

/** The account `signup` created. */
export interface NewUser {
  id: number;
  username: string;
  email: string;
}

/** One request the client sent, as `onRequest` hears of it once answered. */
export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  /** Milliseconds from sending to the answer's headers. */
  ms: number;
}

/** A refused login or sign-up: the HTTP status, and for a sign-up the answer's body. */
export interface TesseraError extends Error {
  status: number;
  body?: unknown;
  /**
   * The body's `code`, when a login step was refused: e.g. "mfa_required",
   * "mfa_code_invalid", "mfa_token_invalid", "passkey_login_disabled".
   */
  code?: string;
  /** With `code` "mfa_required": the token of the login's second step, for verifySecondFactor (5 minutes, once). */
  mfaToken?: string;
  /** With `code` "mfa_required": the factors the user can answer with. */
  methods?: Array<"totp" | "recovery_code" | "passkey">;
  /** With `code` "mfa_enrolment_required": the token that lets startTotpEnrolment, confirmTotp and registerPasskey enrol (10 minutes). */
  enrolmentToken?: string;
}

/** The answer to a login's second step: the authenticator app's code, or a recovery code. */
export type SecondFactor = { code: string; recoveryCode?: undefined } | { recoveryCode: string; code?: undefined };

/** A TOTP enrolment begun: shown this once. */
export interface TotpEnrolment {
  /** The shared secret, base32, for typing into an app. */
  secret: string;
  /** The otpauth:// URI authenticator apps scan. */
  otpauth_uri: string;
  /** That URI as a QR code, an SVG document. */
  qr_svg: string;
}

/** One of the user's passkeys, as `GET /api/auth/passkeys` lists it. */
export interface Passkey {
  id: string;
  /** The label given at registration. */
  name: string;
  /** Registration time, integer seconds since the epoch. */
  created_at: number;
  /** The last login it answered, seconds since the epoch; null before the first. */
  last_used_at: number | null;
}

/** A passkey just registered. */
export interface NewPasskey extends Passkey {
  /** When it is the user's first factor: the ten recovery codes, shown this once. */
  recovery_codes?: string[];
}

/** What `registerPasskey` takes. */
export interface PasskeyRegistration {
  /** A label for the list, e.g. "laptop"; the server chooses one without it. */
  name?: string;
  /** The `enrolmentToken` of a login refused with "mfa_enrolment_required", instead of the session. */
  enrolmentToken?: string;
}

/** What the client needs of `navigator.credentials` (WebAuthn). */
export type WebAuthnCredentials = Pick<CredentialsContainer, "create" | "get">;

export interface ClientOptions {
  /** The server's origin (and path prefix), e.g. "https://auth.example.com"; default "" (this page's origin). */
  baseUrl?: string;
  /**
   * "header" (default): the tokens in memory, sent as `Authorization: Bearer`.
   * "cookie": the tokens in HttpOnly cookies (the server needs `cookies` in
   * `token_locations`), with the CSRF header on unsafe methods.
   */
  transport?: "header" | "cookie";
  /** Called when the session ends: logout, a refresh refused, or a `logoutOn` refusal. */
  onLogout?: () => void;
  /** Called for every request the client sent, once answered. */
  onRequest?: (request: RequestRecord) => void;
  /**
   * Refresh shortly before expiry (default true): when about a tenth of the
   * lifetime is left, 1 to 30 s, for tokens living 10 s or more. Counted
   * from the token's arrival, so a browser clock off the server's does not
   * matter. The refresh on expiry (a 401 `expired`) happens either way.
   */
  refreshAhead?: boolean;
  /**
   * Where `fetch` sends a path ("/orders"): the app's own API, e.g. "" (this
   * page's origin) or "https://api.example.com". Default: `baseUrl`, Tessera.
   * Absolute URLs go where they say. The client's own calls (login, refresh,
   * logout, sessions) always go to `baseUrl`.
   */
  apiBaseUrl?: string;
  /**
   * Further origins whose calls carry the token, e.g. ["https://files.example.com"].
   * Tessera's origin and `apiBaseUrl`'s always do; a call to any other origin
   * goes out as plain `fetch` would send it, without the token, and is not
   * retried.
   */
  tokenOrigins?: string[];
  /**
   * Which 401s mean "refresh and retry", given the status and the parsed
   * JSON body (null when it is not JSON). Default `isExpiredRefusal`:
   * Tessera's reason `expired` and simplejwt's `token_not_valid` whose
   * messages say expired.
   */
  refreshOn?: (status: number, body: unknown) => boolean;
  /**
   * Which 401s end the session here (forget it, call `onLogout`, once).
   * Default `isEndedRefusal`: Tessera's reasons `invalid` and `revoked`.
   */
  logoutOn?: (status: number, body: unknown) => boolean;
  /**
   * WebAuthn for the passkey calls; default `navigator.credentials`. A
   * stand-in (tests, a wrapper) answers `create` and `get` as the browser would.
   */
  credentials?: WebAuthnCredentials;
}

/** Names the token a call was sent with; opaque, for `recover`. */
export interface Ticket {
  readonly generation: number;
  readonly sentWith: string | null;
}

/** What a call carries, as `authorize` answers. */
export interface Authorization {
  /** Headers to set: `Authorization: Bearer ...` (header transport), `X-CSRF-TOKEN` (cookie transport, unsafe methods). */
  headers: Record<string, string>;
  /** The fetch credentials mode; "include" (cookie transport) is axios's `withCredentials: true`. */
  credentials: "include" | "same-origin";
  ticket: Ticket;
}

export interface Client {
  /** The transport chosen at creation. */
  readonly transport: "header" | "cookie";
  /**
   * Logs in; resolves to the new access token's header and claims. Rejects
   * with a TesseraError when refused, and in cookie transport when the
   * server does not offer it (no `cookies` in `token_locations`).
   */
  login(username: string, password: string): Promise<TokenView>;
  /**
   * The second step of a login refused with `code` "mfa_required": its
   * `mfaToken` and the user's code or recovery code. Resolves as login does;
   * a wrong code rejects with `code` "mfa_code_invalid" (the token stays
   * usable), a spent or expired token with "mfa_token_invalid".
   */
  verifySecondFactor(mfaToken: string, factor: SecondFactor): Promise<TokenView>;
  /** Begins TOTP enrolment: with the session (a fresh login), or with a login's `enrolmentToken`. */
  startTotpEnrolment(enrolmentToken?: string): Promise<TotpEnrolment>;
  /** Puts the enrolment in force with a code of its secret; resolves to the ten recovery codes, shown this once. */
  confirmTotp(code: string, enrolmentToken?: string): Promise<string[]>;
  /** Removes the TOTP factor and its recovery codes. */
  removeTotp(factor: SecondFactor): Promise<void>;
  /** Ten new recovery codes; the old ones stop working. */
  regenerateRecoveryCodes(): Promise<string[]>;
  /**
   * Registers a passkey (the browser asks the user): with the session (a
   * fresh login, with the second factor if the user has one), or with a
   * login's `enrolmentToken`. Resolves to the passkey, with the recovery
   * codes when it is the user's first factor. Rejects with a TesseraError
   * when the server refuses, or with the browser's DOMException (e.g.
   * "NotAllowedError") when the user or the authenticator declines.
   */
  registerPasskey(registration?: PasskeyRegistration): Promise<NewPasskey>;
  /** The user's passkeys. */
  listPasskeys(): Promise<Passkey[]>;
  /** Removes one of the user's passkeys (needs a fresh login). */
  deletePasskey(id: string): Promise<void>;
  /**
   * The second step of a login refused with `code` "mfa_required" whose
   * `methods` include "passkey": the browser asks for one of the user's
   * passkeys. Resolves as login does; rejects as verifySecondFactor does, or
   * with the browser's DOMException.
   */
  verifyWithPasskey(mfaToken: string): Promise<TokenView>;
  /**
   * Logs in with a passkey alone (the browser offers the passkeys it has for
   * this server). Resolves as login does; rejects with `code`
   * "passkey_login_disabled" on a server whose `passkey_login` setting is off.
   */
  loginWithPasskey(): Promise<TokenView>;
  /**
   * Picks up the session the browser still holds (after a reload, or in
   * another tab): in cookie transport, when the `csrf_access_token` cookie
   * is readable (the page is on the server's origin), asks `/api/auth/me`,
   * refreshing once if the access token expired. Resolves to the user, or
   * null when there is no session to pick up (always in header transport).
   */
  restore(): Promise<User | null>;
  /** Creates an account; rejects with a TesseraError (with `body`) when refused. */
  signup(username: string, password: string, email?: string): Promise<NewUser>;
  /** Asks for a password-reset link to be mailed to `email` (the same answer whoever has it). */
  requestPasswordReset(email: string): Promise<void>;
  /**
   * Sets a new password with the token of a reset link; rejects with a
   * TesseraError whose `body` has `token` or `new_password` messages.
   */
  confirmPasswordReset(token: string, newPassword: string): Promise<void>;
  /** Verifies the address with the token of a verification link. */
  verifyEmail(token: string): Promise<void>;
  /** Mails the logged-in user a new verification link. */
  requestVerification(): Promise<void>;
  /** Ends the session on the server and forgets it here; `onLogout` is called. */
  logout(): Promise<void>;
  /**
   * Like `window.fetch`, for a path under `apiBaseUrl` (default: the
   * server) or an absolute URL, with the token (or the CSRF header) attached
   * when the origin gets it (`tokenOrigins`); on a `refreshOn` 401 (reason
   * `expired`) it refreshes once and retries once, on a `logoutOn` one
   * (`invalid`, `revoked`) it logs out. Calls that find the token expired
   * together share one refresh, and in cookie transport so do the tabs of
   * the browser (the Web Locks API; without it, within the tab only).
   */
  fetch(path: string | URL, init?: RequestInit): Promise<Response>;
  /**
   * The access token, to hand to code that sends its own calls; refreshed
   * first when due (past its expiry, or within the lead of `refreshAhead`,
   * as counted from its arrival). Null when logged out, and always in
   * cookie transport (the token is in an HttpOnly cookie). Calls that need
   * it at once share one refresh.
   */
  getAccessToken(): Promise<string | null>;
  /**
   * For adapters of other HTTP libraries (the axios one uses it): what a
   * call to `url` (absolute, or relative to the page) with `method` carries,
   * or null when its origin gets no token. Refreshes first when the token is
   * due and `refreshAhead` is on.
   */
  authorize(url: string, method?: string): Promise<Authorization | null>;
  /**
   * For adapters: after a 401 with `body` (parsed JSON, or null) to a call
   * authorized with `ticket`, whether to send the call again (once). A
   * `refreshOn` refusal refreshes (calls refused together share one
   * refresh); a `logoutOn` refusal logs out (once); either resolves true
   * when the token had been replaced since the call left.
   */
  recover(ticket: Ticket, status: number, body: unknown): Promise<boolean>;
  /** The user's sessions not ended, most recently used first. */
  listSessions(): Promise<Session[]>;
  /** Ends one session as a logout would; rejects (status 404) when it is not a live session of the user's. */
  endSession(id: string): Promise<void>;
  /** Ends every session of the user but this one. */
  endOtherSessions(): Promise<void>;
  /** Refreshes now; resolves to false when refused (the client is then logged out). */
  refresh(): Promise<boolean>;
  /**
   * The current access token's header and claims, or null: also while logged
   * in without knowing them (a cookie session restored, or refreshed by
   * another tab, until this client's next refresh).
   */
  readonly token: TokenView | null;
  /** Whether the client holds a session (logged in or restored). */
  readonly loggedIn: boolean;
}

/** One login of the user's, as `GET /api/auth/sessions` lists it. */
export interface Session {
  /** The session's id: its tokens' `fid`. */
  id: string;
  /** RFC 3339. */
  created: string;
  /** RFC 3339: the last refresh, or the login. */
  last_used: string;
  /** The client address at login. */
  ip: string;
  /** The User-Agent at login (at most 256 characters). */
  user_agent: string;
  /** Whether this client's token belongs to it. */
  current: boolean;
}

/** Creates a client for a Tessera server. Throws on a transport other than "header" or "cookie". */
export function createClient(options?: ClientOptions): Client;

/** Decodes the JSON inside a base64url segment of a JWT (display only: no verification). */
export function decodeSegment(segment: string): unknown;

/** The default `refreshOn`: Tessera's reason `expired`, simplejwt's `token_not_valid` whose messages say expired. */
export function isExpiredRefusal(status: number, body: unknown): boolean;

/** The default `logoutOn`: Tessera's reasons `invalid` and `revoked`. */
export function isEndedRefusal(status: number, body: unknown): boolean;
