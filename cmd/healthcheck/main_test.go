package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"ready":true}`))
	}))
	defer ok.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"ready":false,"missing":["no JetStream meta leader"]}`))
	}))
	defer notReady.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"200", []string{ok.URL + "/readyz"}, 0, ""},
		{"404", []string{ok.URL + "/other"}, 1, "404"},
		{"503", []string{notReady.URL + "/readyz"}, 1, "no JetStream meta leader"},
		{"timeout", []string{"-timeout", "100ms", slow.URL}, 1, "deadline"},
		{"refused", []string{closed}, 1, "refused"},
		{"not a url", []string{"127.0.0.1:8080/readyz"}, 2, "want an http(s) URL"},
		{"two urls", []string{ok.URL, ok.URL}, 2, "usage"},
		{"bad flag", []string{"-x"}, 2, ""},
	} {
		var stderr bytes.Buffer
		if code := run(t.Context(), tc.args, &stderr); code != tc.code {
			t.Errorf("%s: exit %d, want %d (%s)", tc.name, code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.say) {
			t.Errorf("%s: stderr %q lacks %q", tc.name, stderr.String(), tc.say)
		}
	}
}
