import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// The local Tickmesh node that `npm run dev` proxies /ws and /api to.
// Override with TICKMESH_NODE=http://127.0.0.1:8082 npm run dev
const node = process.env.TICKMESH_NODE ?? 'http://127.0.0.1:8081';

export default defineConfig({
  base: '/',
  server: {
    proxy: {
      // No changeOrigin for /ws: the Host header stays the dev server's, matching the
      // browser's Origin header, so a same-origin check on the node accepts it.
      '/ws': { target: node, ws: true },
      '/api': { target: node, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        cluster: resolve(import.meta.dirname, 'cluster.html'),
      },
    },
  },
});
