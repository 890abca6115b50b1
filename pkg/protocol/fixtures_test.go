package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Golden fixtures shared with the TypeScript client (see docs/PROTOCOL.md, "Fixtures"):
//
//   - client/*.json: one valid client frame each. It decodes, and re-encodes to semantically equal JSON.
//   - server/*.json: one server frame each. It decodes into its Go type and re-encodes to exactly the
//     fixture's bytes after json.Compact (fixtures may be reformatted; field order and number spelling
//     are part of the contract).
//   - invalid/*.json: {"frame": <raw frame text>, "code": <error code DecodeClient must return>}.
const fixtureDir = "testdata/fixtures"

// requiredFixtures guards against fixtures disappearing silently.
var requiredFixtures = []string{
	"client/hello.json", "client/hello_minimal.json", "client/hello_resume.json", "client/input.json",
	"client/ping.json", "client/ping_empty.json",
	"server/welcome.json", "server/nodes.json", "server/tick.json", "server/error.json", "server/pong.json",
	"invalid/hello_unknown_field.json", "invalid/input_seq_string.json", "invalid/input_seq_zero.json",
	"invalid/input_seq_fraction.json", "invalid/input_seq_too_big.json", "invalid/hello_name_too_long.json",
	"invalid/hello_bad_room_uppercase.json", "invalid/unknown_type.json", "invalid/trailing_garbage.json",
	"invalid/not_object_array.json", "invalid/missing_type.json", "invalid/hello_protocol_3.json", "client/hello_protocol_2.json",
	"server/tick_collect.json", "server/welcome_arena.json", "server/welcome_collect.json", "client/input_data.json",
	"invalid/input_keys_and_data.json", "invalid/input_data_too_large.json", "games/arena.json", "games/collect.json",
}

type fixture struct {
	path string // relative to fixtureDir
	data []byte
}

func loadFixtures(t testing.TB, sub string) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, sub, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in %s/%s", fixtureDir, sub)
	}
	var fs []fixture
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(fixtureDir, p)
		fs = append(fs, fixture{path: filepath.ToSlash(rel), data: data})
	}
	return fs
}

type invalidFixture struct {
	Frame *string `json:"frame"`
	Code  string  `json:"code"`
}

func parseInvalid(t testing.TB, f fixture) invalidFixture {
	t.Helper()
	var inv invalidFixture
	dec := json.NewDecoder(bytes.NewReader(f.data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil || inv.Frame == nil || inv.Code == "" {
		t.Fatalf("%s: malformed invalid fixture (want {\"frame\":...,\"code\":...}): %v", f.path, err)
	}
	return inv
}

// jsonEqual reports whether a and b are the same JSON value (numbers compared by their spelling).
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if err := da.Decode(&va); err != nil {
		t.Fatalf("jsonEqual: %v in %s", err, a)
	}
	if err := db.Decode(&vb); err != nil {
		t.Fatalf("jsonEqual: %v in %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

func TestFixturesPresent(t *testing.T) {
	for _, p := range requiredFixtures {
		if _, err := os.Stat(filepath.Join(fixtureDir, p)); err != nil {
			t.Errorf("required fixture missing: %v", err)
		}
	}
}

func TestClientFixtures(t *testing.T) {
	for _, f := range loadFixtures(t, "client") {
		t.Run(f.path, func(t *testing.T) {
			v, err := DecodeClient(f.data)
			if err != nil {
				t.Fatalf("DecodeClient: %v", err)
			}
			// The file name starts with the message type.
			want := strings.SplitN(strings.TrimSuffix(filepath.Base(f.path), ".json"), "_", 2)[0]
			if got := reflect.TypeOf(v).Elem().Name(); !strings.EqualFold(got, want) {
				t.Fatalf("decoded %s, file name says %s", got, want)
			}
			enc, err := Encode(v)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !jsonEqual(t, enc, f.data) {
				t.Errorf("re-encoded JSON differs:\n got %s\nwant %s", enc, bytes.TrimSpace(f.data))
			}
			v2, err := DecodeClient(enc)
			if err != nil {
				t.Fatalf("DecodeClient(re-encoded): %v", err)
			}
			if !reflect.DeepEqual(v, v2) {
				t.Errorf("round trip changed the value: %+v -> %+v", v, v2)
			}
		})
	}
}

func TestServerFixtures(t *testing.T) {
	for _, f := range loadFixtures(t, "server") {
		t.Run(f.path, func(t *testing.T) {
			var canonical bytes.Buffer
			if err := json.Compact(&canonical, f.data); err != nil {
				t.Fatalf("fixture is not JSON: %v", err)
			}
			v, err := DecodeServer(f.data)
			if err != nil {
				t.Fatalf("DecodeServer: %v", err)
			}
			want := strings.SplitN(strings.TrimSuffix(filepath.Base(f.path), ".json"), "_", 2)[0]
			if got := reflect.TypeOf(v).Elem().Name(); !strings.EqualFold(got, want) {
				t.Fatalf("decoded %s, file name says %s", got, want)
			}
			enc, err := Encode(v)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(enc, canonical.Bytes()) {
				t.Errorf("re-encoding is not byte-identical:\n got %s\nwant %s", enc, canonical.Bytes())
			}
			// A server message is never a valid client message.
			var derr *DecodeError
			if _, err := DecodeClient(f.data); !errors.As(err, &derr) || derr.Code != CodeUnknownType {
				t.Errorf("DecodeClient(server frame) = %v, want %s", err, CodeUnknownType)
			}
		})
	}
}

var decodeCodes = []string{CodeBadJSON, CodeUnknownType, CodeBadField, CodeBadProtocol}

func TestInvalidFixtures(t *testing.T) {
	for _, f := range loadFixtures(t, "invalid") {
		t.Run(f.path, func(t *testing.T) {
			inv := parseInvalid(t, f)
			if !slices.Contains(decodeCodes, inv.Code) {
				t.Fatalf("fixture code %q is not a decode error code %v", inv.Code, decodeCodes)
			}
			v, err := DecodeClient([]byte(*inv.Frame))
			var derr *DecodeError
			if !errors.As(err, &derr) {
				t.Fatalf("DecodeClient(%q) = %+v, %v; want a *DecodeError", *inv.Frame, v, err)
			}
			if v != nil {
				t.Errorf("DecodeClient returned a value with an error: %+v", v)
			}
			if derr.Code != inv.Code {
				t.Errorf("DecodeClient(%q) code = %s (%s), want %s", *inv.Frame, derr.Code, derr.Message, inv.Code)
			}
			if derr.Message == "" {
				t.Error("empty message")
			}
		})
	}
}
