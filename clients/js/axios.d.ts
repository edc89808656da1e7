// TypeScript declarations for @tessera/client/axios, Tessera's axios adapter.
import type { AxiosInstance } from "axios";
import type { Client } from "./tessera.js";

/**
 * Attaches `client`'s session to `instance`: the bearer token (or, in cookie
 * transport, `withCredentials` and the CSRF header) on each request to an
 * origin the client gives it; on a 401 meaning expiry one refresh shared by
 * every request refused together and one retry of each; on a 401 meaning the
 * session ended (`invalid`, `revoked`) a logout, once. Returns a function
 * that detaches it.
 */
export function attachTessera(instance: AxiosInstance, client: Client): () => void;
