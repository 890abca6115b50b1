package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var (
	testSecret  = []byte("0123456789abcdef-test-secret")
	otherSecret = []byte("fedcba9876543210-other-secret")
	testTime    = time.Unix(1732800000, 0)
)

func mustSigner(t testing.TB, secret []byte) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign builds a token with an arbitrary payload, correctly signed with secret.
func sign(secret []byte, body string) string {
	enc := b64.EncodeToString([]byte(body))
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(enc))
	return enc + "." + b64.EncodeToString(h.Sum(nil))
}

func TestRoundTrip(t *testing.T) {
	s := mustSigner(t, testSecret)
	for _, player := range []string{"p0123456789abcdef", "pffffffffffffffff", "x", "ünïcode \"quoted\" <&>"} {
		issued := testTime.Add(1500 * time.Millisecond)
		tok := s.Issue(player, issued)
		if len(tok) > MaxTokenLen {
			t.Fatalf("token too long: %d", len(tok))
		}
		if strings.ContainsAny(tok, "=+/ ") || strings.Count(tok, ".") != 1 {
			t.Fatalf("token %q is not two unpadded base64url parts", tok)
		}
		c, err := s.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(%q): %v", tok, err)
		}
		if c.Player != player {
			t.Errorf("player = %q, want %q", c.Player, player)
		}
		if want := issued.Truncate(time.Second); !c.IssuedAt.Equal(want) {
			t.Errorf("issuedAt = %v, want %v", c.IssuedAt, want)
		}
		// A second Signer with the same secret (another node) accepts it too.
		if _, err := mustSigner(t, bytes.Clone(testSecret)).Verify(tok); err != nil {
			t.Errorf("other node: %v", err)
		}
	}
}

func TestDeterministic(t *testing.T) {
	s := mustSigner(t, testSecret)
	a, b := s.Issue("p0123456789abcdef", testTime), s.Issue("p0123456789abcdef", testTime)
	if a != b {
		t.Fatalf("tokens differ: %q %q", a, b)
	}
}

func TestSecretIsCopied(t *testing.T) {
	secret := bytes.Clone(testSecret)
	s := mustSigner(t, secret)
	tok := s.Issue("p0123456789abcdef", testTime)
	secret[0] ^= 1
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("mutating the caller's secret changed the signer: %v", err)
	}
}

func TestShortSecret(t *testing.T) {
	for _, n := range []int{0, 1, 15} {
		if _, err := NewSigner(make([]byte, n)); err == nil {
			t.Errorf("NewSigner(%d bytes) succeeded", n)
		}
	}
	if _, err := NewSigner(make([]byte, 16)); err != nil {
		t.Errorf("NewSigner(16 bytes): %v", err)
	}
}

func TestOtherSecret(t *testing.T) {
	tok := mustSigner(t, testSecret).Issue("p0123456789abcdef", testTime)
	_, err := mustSigner(t, otherSecret).Verify(tok)
	if !errors.Is(err, ErrBadToken) {
		t.Fatalf("err = %v, want ErrBadToken", err)
	}
}

func TestTampered(t *testing.T) {
	s := mustSigner(t, testSecret)
	tok := s.Issue("p0123456789abcdef", testTime)
	enc, sig, _ := strings.Cut(tok, ".")

	// A payload for another player, with the original signature.
	forged := b64.EncodeToString([]byte(`{"v":1,"p":"p1111111111111111","iat":1732800000}`)) + "." + sig
	// Every single-character change of the token.
	cases := []string{forged, enc + "." + sig + "A", "A" + enc + "." + sig, enc + ".." + sig, enc + sig}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(tok) {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%len(alphabet)], '=', '+', '/', ' '} {
			b := []byte(tok)
			b[i] = c
			cases = append(cases, string(b))
		}
	}
	// Inserted characters that the base64 decoder would skip.
	for _, ins := range []string{"\r", "\n", "\r\n"} {
		cases = append(cases, enc[:5]+ins+enc[5:]+"."+sig, enc+"."+sig[:5]+ins+sig[5:], enc+"."+sig+ins, ins+tok)
	}
	for _, c := range cases {
		if _, err := s.Verify(c); !errors.Is(err, ErrBadToken) {
			t.Errorf("Verify(%q) = %v, want ErrBadToken", c, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	s := mustSigner(t, testSecret)
	cases := map[string]string{
		"empty":          "",
		"no dot":         "abc",
		"only dot":       ".",
		"three parts":    "a.b.c",
		"bad base64":     "!!!.???",
		"padded":         sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}`) + "=",
		"short sig":      "e30." + b64.EncodeToString(make([]byte, 31)),
		"too long":       sign(testSecret, `{"v":1,"p":"`+strings.Repeat("a", 600)+`","iat":1}`),
		"not json":       sign(testSecret, `hello`),
		"json array":     sign(testSecret, `[1,2]`),
		"trailing":       sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}x`),
		"trailing brace": sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}}`),
		"two objects":    sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}{}`),
		"unknown field":  sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1,"admin":true}`),
		"wrong version":  sign(testSecret, `{"v":2,"p":"p0123456789abcdef","iat":1}`),
		"no version":     sign(testSecret, `{"p":"p0123456789abcdef","iat":1}`),
		"empty player":   sign(testSecret, `{"v":1,"p":"","iat":1}`),
		"no player":      sign(testSecret, `{"v":1,"iat":1}`),
		"iat string":     sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":"1"}`),
		"iat fraction":   sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1.5}`),
	}
	for name, tok := range cases {
		if c, err := s.Verify(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: Verify(%q) = %+v, %v; want ErrBadToken", name, tok, c, err)
		}
	}
	// Sanity check of the helper: a well-formed payload signed the same way verifies.
	if _, err := s.Verify(sign(testSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}`)); err != nil {
		t.Fatalf("helper-signed token: %v", err)
	}
}

func TestVerifyAt(t *testing.T) {
	s := mustSigner(t, testSecret)
	tok := s.Issue("p0123456789abcdef", testTime)
	day := 24 * time.Hour
	cases := []struct {
		name    string
		now     time.Time
		maxAge  time.Duration
		wantErr error
	}{
		{"fresh", testTime, day, nil},
		{"at max age", testTime.Add(day), day, nil},
		{"expired", testTime.Add(day + time.Second), day, ErrTokenExpired},
		{"no max age", testTime.Add(1000 * day), 0, nil},
		{"small skew", testTime.Add(-MaxClockSkew), day, nil},
		{"from the future", testTime.Add(-MaxClockSkew - time.Second), day, ErrBadToken},
		{"from the future, no max age", testTime.Add(-time.Hour), 0, ErrBadToken},
	}
	for _, c := range cases {
		claims, err := s.VerifyAt(tok, c.now, c.maxAge)
		if c.wantErr == nil {
			if err != nil || claims.Player != "p0123456789abcdef" {
				t.Errorf("%s: %+v, %v", c.name, claims, err)
			}
			continue
		}
		if !errors.Is(err, c.wantErr) || !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.wantErr)
		}
	}
	if _, err := s.VerifyAt("garbage", testTime, day); !errors.Is(err, ErrBadToken) {
		t.Errorf("garbage: %v", err)
	}
}

func TestNewPlayerID(t *testing.T) {
	id, err := NewPlayerID(bytes.NewReader([]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff}))
	if err != nil {
		t.Fatal(err)
	}
	if id != "p0123456789abcdef" {
		t.Fatalf("id = %q", id)
	}
	if !ValidPlayerID(id) {
		t.Fatalf("ValidPlayerID(%q) = false", id)
	}
	if _, err := NewPlayerID(bytes.NewReader([]byte{1, 2, 3})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short reader: %v", err)
	}
	boom := errors.New("boom")
	if _, err := NewPlayerID(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("failing reader: %v", err)
	}
}

func TestValidPlayerID(t *testing.T) {
	for id, want := range map[string]bool{
		"p0123456789abcdef":  true,
		"p0123456789ABCDEF":  false,
		"q0123456789abcdef":  false,
		"p0123456789abcde":   false,
		"p0123456789abcdef0": false,
		"p0123456789abcdeg":  false,
		"":                   false,
	} {
		if got := ValidPlayerID(id); got != want {
			t.Errorf("ValidPlayerID(%q) = %v, want %v", id, got, want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	s := mustSigner(f, testSecret)
	valid := s.Issue("p0123456789abcdef", testTime)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add("")
	f.Add(".")
	f.Add("a.b")
	f.Add(sign(otherSecret, `{"v":1,"p":"p0123456789abcdef","iat":1}`))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		// Only tokens we issued verify: re-issuing the claims reproduces the token.
		if c.Player == "" {
			t.Fatalf("accepted %q with empty player", tok)
		}
		if again := s.Issue(c.Player, c.IssuedAt); again != tok {
			t.Fatalf("accepted %q, but its claims re-issue as %q", tok, again)
		}
		if _, err := s.VerifyAt(tok, c.IssuedAt, time.Hour); err != nil {
			t.Fatalf("VerifyAt at issue time: %v", err)
		}
	})
}
