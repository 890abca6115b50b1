package frontend

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHandlerBuilt(t *testing.T) {
	h := newHandler(fstest.MapFS{
		"PLACEHOLDER.md":        {Data: []byte("placeholder")},
		"app/index.html":        {Data: []byte("<!doctype html><canvas id=game></canvas>")},
		"app/cluster.html":      {Data: []byte("<!doctype html><table id=nodes></table>")},
		"app/assets/index-1.js": {Data: []byte("console.log(1)")},
	})
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/", "<canvas id=game>", http.StatusOK},
		{"/cluster.html", "<table id=nodes>", http.StatusOK},
		{"/assets/index-1.js", "console.log(1)", http.StatusOK},
		{"/missing.js", "", http.StatusNotFound},
		{"/assets/", "", http.StatusNotFound},
	} {
		code, body := get(t, h, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h := newHandler(fstest.MapFS{"PLACEHOLDER.md": {Data: []byte("placeholder")}})
	for _, path := range []string{"/", "/cluster.html"} {
		code, body := get(t, h, path)
		if code != http.StatusOK || !strings.Contains(body, "npm run build") {
			t.Errorf("GET %s = %d %q, want 200 with build instructions", path, code, body)
		}
	}
	if code, _ := get(t, h, "/assets/index.js"); code != http.StatusNotFound {
		t.Errorf("GET /assets/index.js = %d, want 404", code)
	}
}

// TestHandlerEmbedded checks the real embedded tree, built or not.
func TestHandlerEmbedded(t *testing.T) {
	if code, _ := get(t, Handler(), "/"); code != http.StatusOK {
		t.Errorf("GET / = %d, want 200", code)
	}
}
