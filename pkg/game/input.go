package game

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Helpers for DecodeInput: strict decoding of a JSON payload without reflection. encoding/json alone accepts
// duplicate members, null for anything and 1.0 for an integer; a payload from a client must not.

// ErrPayload wraps every error of the helpers below.
var ErrPayload = errors.New("bad payload")

// Members calls fn with the name and raw value of each member of data, which must be exactly one JSON object
// (white space around it allowed) with unique member names. It stops at fn's first error and returns it.
func Members(data []byte, fn func(name string, value json.RawMessage) error) error {
	if !json.Valid(data) {
		return fmt.Errorf("%w: not one JSON value", ErrPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, _ := dec.Token()
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: not an object", ErrPayload)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("%w: duplicate member %q", ErrPayload, name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: %v", ErrPayload, err)
		}
		if err := fn(name, raw); err != nil {
			return err
		}
	}
	return nil
}

// Int parses raw as an integer in [lo, hi] written in integer syntax (no fraction, no exponent).
func Int(name string, raw json.RawMessage, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s: want an integer in [%d, %d]", ErrPayload, name, lo, hi)
	}
	return n, nil
}

// Bool parses raw as true or false.
func Bool(name string, raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: want true or false", ErrPayload, name)
}

// Unknown is the error for a member a payload does not have.
func Unknown(name string) error {
	return fmt.Errorf("%w: unknown member %s", ErrPayload, strconv.Quote(name))
}
