// Tessera's axios adapter: an axios instance as the HTTP layer of an app whose
// session a Tessera client (tessera.js) holds.
//
//   import axios from "axios";
//   import { createClient } from "@tessera/client";
//   import { attachTessera } from "@tessera/client/axios";
//   const client = createClient({ baseUrl: "https://auth.example.com", onLogout: showLogin });
//   const api = axios.create({ baseURL: "https://api.example.com" });
//   attachTessera(api, client);
//
// Each request to an origin the client gives the token (Tessera's, its
// apiBaseUrl's, its tokenOrigins) carries it; a 401 that means expiry
// refreshes through the client (so every request refused together shares one
// refresh, and in cookie transport so do the browser's tabs) and sends the
// request again once; a 401 that means the session ended logs out, once.
// It needs nothing from axios but an instance: no import, no version pinned.

// Headers the client owns on the requests it authorizes.
const OWNED = ["Authorization", "X-CSRF-TOKEN"];

function setHeader(config, name, value) {
  if (typeof config.headers?.set === "function") config.headers.set(name, value);
  else config.headers = { ...config.headers, [name]: value };
}

function deleteHeader(config, name) {
  if (typeof config.headers?.delete === "function") config.headers.delete(name);
  else if (config.headers) delete config.headers[name];
}

// axios parses JSON answers; one it could not parse (or was told not to) is a string.
function parsed(data) {
  if (typeof data !== "string") return data && typeof data === "object" ? data : null;
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

/**
 * Attaches `client`'s session to `instance` (an axios instance, or axios
 * itself). Returns a function that detaches it again.
 */
export function attachTessera(instance, client) {
  const onRequest = instance.interceptors.request.use(async (config) => {
    const method = (config.method || "get").toUpperCase();
    const auth = await client.authorize(instance.getUri(config), method);
    // The ticket says which token this request carried, for recover.
    config.tesseraTicket = auth ? auth.ticket : null;
    if (!auth) return config;
    for (const [name, value] of Object.entries(auth.headers)) setHeader(config, name, value);
    if (auth.credentials === "include") config.withCredentials = true;
    return config;
  });
  const onResponse = instance.interceptors.response.use(undefined, async (error) => {
    const config = error && error.config;
    const response = error && error.response;
    if (!config || !response || response.status !== 401 || !config.tesseraTicket || config.tesseraRetried) {
      throw error;
    }
    if (!(await client.recover(config.tesseraTicket, response.status, parsed(response.data)))) throw error;
    // Once: the retry's own 401, whatever it says, goes to the caller.
    config.tesseraRetried = true;
    for (const name of OWNED) deleteHeader(config, name);
    return instance.request(config);
  });
  return () => {
    instance.interceptors.request.eject(onRequest);
    instance.interceptors.response.eject(onResponse);
  };
}
