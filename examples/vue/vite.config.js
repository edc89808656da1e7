// The page, Tessera and the backend share one origin, as in the tutorial's
// dev setup (its Vue dev server proxied to Django): the browser sends no
// cross-origin requests, so neither server needs CORS. `npm run dev` and
// `npm run preview` proxy
//   /api, /.well-known, /static  to Tessera        (AUTH_ORIGIN, default http://127.0.0.1:8000)
//   /backend/*                   to the backend's /* (BACKEND_ORIGIN, default http://127.0.0.1:9001)
// In production a reverse proxy (nginx, ...) does the same in front of dist/.
// The variables are not named TESSERA_*: Tessera refuses unknown TESSERA_*
// variables, and they may be exported in the shell that starts it.
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

const auth = process.env.AUTH_ORIGIN || "http://127.0.0.1:8000";
const backend = process.env.BACKEND_ORIGIN || "http://127.0.0.1:9001";

const proxy = {
  "/api": auth,
  "/.well-known": auth,
  "/static": auth,
  "/backend": { target: backend, rewrite: (path) => path.replace(/^\/backend/, "") },
};

export default defineConfig({
  plugins: [vue()],
  server: { proxy },
  preview: { proxy },
});
