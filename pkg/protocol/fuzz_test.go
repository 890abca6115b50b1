package protocol

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeClient checks that DecodeClient never panics, fails only with a *DecodeError of a decode code,
// and that accepted messages re-encode to a frame that decodes to the same value. The seeds are the client,
// server and invalid fixtures.
func FuzzDecodeClient(f *testing.F) {
	for _, sub := range []string{"client", "server"} {
		for _, fx := range loadFixtures(f, sub) {
			f.Add(fx.data)
		}
	}
	for _, fx := range loadFixtures(f, "invalid") {
		f.Add([]byte(*parseInvalid(f, fx).Frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeClient(data)
		if err != nil {
			var derr *DecodeError
			if !errors.As(err, &derr) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			switch derr.Code {
			case CodeBadJSON, CodeUnknownType, CodeBadField, CodeBadProtocol:
			default:
				t.Fatalf("unexpected code %q", derr.Code)
			}
			if v != nil {
				t.Fatalf("value %+v returned with error", v)
			}
			return
		}
		switch v.(type) {
		case *Hello, *Input, *Ping:
		default:
			t.Fatalf("unexpected type %T", v)
		}
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", v, err)
		}
		v2, err := DecodeClient(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip changed the value: %+v -> %+v (via %s)", v, v2, enc)
		}
		enc2, err := Encode(v2)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoding is not stable: %s vs %s (%v)", enc, enc2, err)
		}
	})
}
