// Package session issues and verifies signed resume tokens and generates player ids.
//
// A resume token lets a browser reconnect, to any node, as the same player. It is
//
//	base64url(payload) "." base64url(HMAC-SHA256(secret, base64url(payload)))
//
// with unpadded base64url (RFC 4648 §5) and payload the JSON object {"v":1,"p":<player>,"iat":<unix
// seconds>}. The MAC covers the encoded payload exactly as transmitted. Every node of a cluster shares the
// secret. Tokens are not encrypted: the player id is readable by anyone holding the token.
//
// The package is pure: no I/O (randomness is passed in), no clock, no goroutines.
package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MinSecretLen is the minimum length of a signing secret in bytes.
const MinSecretLen = 16

// MaxTokenLen is the maximum length of a token accepted by Verify, in bytes (the protocol's limit for
// hello.resume).
const MaxTokenLen = 512

// MaxClockSkew is how far in the future a token's issue time may be before VerifyAt rejects it, to
// tolerate clock differences between nodes.
const MaxClockSkew = time.Minute

// tokenVersion is the payload format version ("v").
const tokenVersion = 1

var (
	// ErrBadToken is returned (wrapped with detail) for any token that does not verify.
	ErrBadToken = errors.New("session: bad resume token")
	// ErrTokenExpired is returned by VerifyAt for a token older than the maximum age; it wraps ErrBadToken.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrBadToken)
)

var b64 = base64.RawURLEncoding.Strict()

// Claims are the verified contents of a token.
type Claims struct {
	Player string
	// IssuedAt is the issue time truncated to whole seconds.
	IssuedAt time.Time
}

// Signer issues and verifies tokens with one secret. It is safe for concurrent use.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer using a copy of secret, which must be at least MinSecretLen bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("session: secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	return &Signer{secret: bytes.Clone(secret)}, nil
}

type payload struct {
	V   int    `json:"v"`
	P   string `json:"p"`
	IAT int64  `json:"iat"`
}

// Issue returns a token for player issued at issuedAt (truncated to whole seconds). Player should come
// from NewPlayerID; it must not be empty for the token to verify.
func (s *Signer) Issue(player string, issuedAt time.Time) string {
	body, err := json.Marshal(payload{V: tokenVersion, P: player, IAT: issuedAt.Unix()})
	if err != nil {
		panic("session: marshal payload: " + err.Error()) // unreachable: only a string and integers
	}
	enc := b64.EncodeToString(body)
	return enc + "." + b64.EncodeToString(s.mac(enc))
}

func (s *Signer) mac(encodedPayload string) []byte {
	h := hmac.New(sha256.New, s.secret)
	io.WriteString(h, encodedPayload)
	return h.Sum(nil)
}

// Verify checks token's signature and format and returns its claims, without any age check. Errors wrap
// ErrBadToken.
func (s *Signer) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenLen)
	}
	for i := 0; i < len(token); i++ {
		// The base64 decoder skips '\r' and '\n'; allow only the alphabet, so that a token has one spelling.
		if c := token[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Claims{}, fmt.Errorf("%w: invalid character", ErrBadToken)
		}
	}
	enc, sigEnc, ok := strings.Cut(token, ".")
	if !ok || strings.Contains(sigEnc, ".") {
		return Claims{}, fmt.Errorf("%w: not two dot-separated parts", ErrBadToken)
	}
	sig, err := b64.DecodeString(sigEnc)
	if err != nil || len(sig) != sha256.Size {
		return Claims{}, fmt.Errorf("%w: malformed signature", ErrBadToken)
	}
	if !hmac.Equal(sig, s.mac(enc)) {
		return Claims{}, fmt.Errorf("%w: signature mismatch", ErrBadToken)
	}
	// The payload was produced by a holder of the secret; still, parse it strictly.
	body, err := b64.DecodeString(enc)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: malformed payload encoding", ErrBadToken)
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrBadToken)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrBadToken)
	}
	if p.V != tokenVersion {
		return Claims{}, fmt.Errorf("%w: unsupported token version %d", ErrBadToken, p.V)
	}
	if p.P == "" {
		return Claims{}, fmt.Errorf("%w: empty player", ErrBadToken)
	}
	return Claims{Player: p.P, IssuedAt: time.Unix(p.IAT, 0)}, nil
}

// VerifyAt is Verify followed by an age check at time now: the token is rejected with ErrTokenExpired if it
// was issued more than maxAge before now, and with ErrBadToken if it was issued more than MaxClockSkew after
// now. maxAge <= 0 disables the age check (the future check remains).
func (s *Signer) VerifyAt(token string, now time.Time, maxAge time.Duration) (Claims, error) {
	c, err := s.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	if c.IssuedAt.Sub(now) > MaxClockSkew {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrBadToken)
	}
	if maxAge > 0 && now.Sub(c.IssuedAt) > maxAge {
		return Claims{}, ErrTokenExpired
	}
	return c, nil
}

// NewPlayerID returns a new player id, "p" followed by 16 lowercase hex digits, from 8 bytes of r (normally
// crypto/rand.Reader).
func NewPlayerID(r io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("session: player id: %w", err)
	}
	return "p" + hex.EncodeToString(b[:]), nil
}

// ValidPlayerID reports whether id has the form produced by NewPlayerID.
func ValidPlayerID(id string) bool {
	if len(id) != 17 || id[0] != 'p' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
