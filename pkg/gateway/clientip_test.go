package gateway

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIPBelievesForwardedAddressesFromTrustedProxiesOnly(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name    string
		remote  string
		header  http.Header
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies trusted: the peer", "127.0.0.1:5000", http.Header{"X-Real-Ip": {"203.0.113.7"}}, nil, "127.0.0.1"},
		{"untrusted peer spoofing X-Real-IP", "192.168.1.9:5000", http.Header{"X-Real-Ip": {"203.0.113.7"}}, proxies, "192.168.1.9"},
		{"untrusted peer spoofing X-Forwarded-For", "192.168.1.9:5000", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, proxies, "192.168.1.9"},
		{"trusted proxy's X-Real-IP", "127.0.0.1:5000", http.Header{"X-Real-Ip": {"203.0.113.7"}}, proxies, "203.0.113.7"},
		{"X-Real-IP wins over X-Forwarded-For", "127.0.0.1:5000", http.Header{"X-Real-Ip": {"203.0.113.7"}, "X-Forwarded-For": {"198.51.100.1"}}, proxies, "203.0.113.7"},
		{"rightmost untrusted X-Forwarded-For entry", "127.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7, 10.1.2.3"}}, proxies, "203.0.113.7"},
		{"X-Forwarded-For over several headers", "127.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1", "203.0.113.8"}}, proxies, "203.0.113.8"},
		{"every hop a trusted proxy: the peer", "127.0.0.1:5000", http.Header{"X-Forwarded-For": {"10.0.0.1"}}, proxies, "127.0.0.1"},
		{"malformed entry stops the walk", "127.0.0.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.7, bogus"}}, proxies, "127.0.0.1"},
		{"malformed X-Real-IP falls back to X-Forwarded-For", "127.0.0.1:5000", http.Header{"X-Real-Ip": {"nope"}, "X-Forwarded-For": {"203.0.113.9"}}, proxies, "203.0.113.9"},
		{"IPv4-mapped IPv6 peer", "[::ffff:127.0.0.1]:5000", http.Header{"X-Real-Ip": {"203.0.113.7"}}, proxies, "203.0.113.7"},
		{"IPv6 proxy", "[::1]:5000", http.Header{"X-Real-Ip": {"2001:db8::7"}}, []netip.Prefix{netip.MustParsePrefix("::1/128")}, "2001:db8::7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: tc.header}
			if got := clientIP(r, tc.trusted); got != tc.want {
				t.Fatalf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
