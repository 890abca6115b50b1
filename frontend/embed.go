// Package frontend embeds the browser client (the game page and the cluster
// view) and serves it over HTTP.
//
// The client is a Vite + TypeScript project in this directory. Its production
// build goes to dist/app/ (not committed) and is embedded into the node binary
// when the node is built:
//
//	cd frontend && npm ci && npm run build
//	go build ./cmd/node
//
// Without a build, Handler serves a short page that says so and how to build.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// dist always holds dist/PLACEHOLDER.md (committed) and, after a build,
// dist/app/.
//
//go:embed all:dist
var dist embed.FS

// Handler serves the embedded client: dist/app when it holds a build (with
// index.html), otherwise a "frontend not built" page at / and /cluster.html
// and 404 for everything else. Mount it at / of the node's HTTP server, next
// to /ws and /api/.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // impossible: "dist" is a valid path
	}
	return newHandler(sub)
}

// newHandler serves fsys, a tree laid out like dist/ (app/index.html, ...).
func newHandler(fsys fs.FS) http.Handler {
	if app, err := fs.Sub(fsys, "app"); err == nil {
		if st, err := fs.Stat(app, "index.html"); err == nil && !st.IsDir() {
			return appHandler(app)
		}
	}
	return http.HandlerFunc(notBuilt)
}

func appHandler(app fs.FS) http.Handler {
	files := http.FileServerFS(app)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		if strings.HasPrefix(r.URL.Path, "/assets/") {
			// Vite puts a content hash in every asset name.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

const notBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tickmesh: frontend not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
<h1>Tickmesh: the frontend is not built</h1>
<p>This node was built without the browser client. To include it, build the
frontend and then rebuild the node:</p>
<pre>cd frontend && npm ci && npm run build
go build -o tickmesh-node ./cmd/node</pre>
<p>The WebSocket endpoint <code>/ws</code> and the API under <code>/api/</code>
work without it.</p>
</body>
</html>
`

func notBuilt(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/", "/index.html", "/cluster.html":
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(notBuiltPage))
}
