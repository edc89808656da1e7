// The session and the HTTP layer, shared by the components. In the tutorial
// this was its TokenService (tokens in localStorage), an axios instance with
// a request interceptor adding the bearer token, and a response interceptor
// that refreshed on every 401 and retried. Here Tessera's client holds the
// tokens (in memory only) and its axios adapter does both interceptors' work:
// the requests that find the token expired share one refresh, each is sent
// again once, and a session ended elsewhere (logout in another tab, password
// change, deactivation) logs out here.
import axios from "axios";
import { ref } from "vue";
import { createClient } from "@tessera/client";
import { attachTessera } from "@tessera/client/axios";

/** Whether the login form or the orders show. */
export const loggedIn = ref(false);

export const client = createClient({
  // Tessera is behind this page's origin (vite.config.js's proxy), and so is
  // the backend (/backend/...): the token goes to this origin only. A backend
  // on an origin of its own would be named in `tokenOrigins`.
  baseUrl: "",
  apiBaseUrl: "",
  onLogout: () => {
    loggedIn.value = false;
  },
});

/** The app's axios instance: every request to this origin carries the session. */
export const api = axios.create();
attachTessera(api, client);
