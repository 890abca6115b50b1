package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Encode returns the canonical JSON frame of msg, one of Hello, Input, Ping, Welcome, Nodes, Tick, Error
// or Pong (value or pointer): a compact object whose first member is "type", followed by the fields in
// declaration order, without HTML escaping and without a trailing newline. Nil node and player lists are
// encoded as []. Encode does not validate field values.
func Encode(msg any) ([]byte, error) {
	if isNilPointer(msg) {
		return nil, fmt.Errorf("protocol: cannot encode nil %T", msg)
	}
	var v any
	switch m := msg.(type) {
	case *Hello:
		v = struct {
			Type string `json:"type"`
			*Hello
		}{TypeHello, m}
	case *Input:
		if m.Data != nil {
			v = struct {
				Type string          `json:"type"`
				Seq  uint64          `json:"seq"`
				Data json.RawMessage `json:"data"`
			}{TypeInput, m.Seq, m.Data}
		} else {
			v = struct {
				Type string `json:"type"`
				Seq  uint64 `json:"seq"`
				Keys Keys   `json:"keys"`
			}{TypeInput, m.Seq, m.Keys}
		}
	case *Ping:
		v = struct {
			Type string `json:"type"`
			*Ping
		}{TypePing, m}
	case *Welcome:
		if m.Nodes == nil {
			c := *m
			c.Nodes = []NodeInfo{}
			m = &c
		}
		v = struct {
			Type string `json:"type"`
			*Welcome
		}{TypeWelcome, m}
	case *Nodes:
		if m.Nodes == nil {
			m = &Nodes{Nodes: []NodeInfo{}}
		}
		v = struct {
			Type string `json:"type"`
			*Nodes
		}{TypeNodes, m}
	case *Tick:
		b, err := appendTick(make([]byte, 0, 256+120*len(m.Players)), m)
		if err != nil {
			return nil, fmt.Errorf("protocol: encode %T: %w", msg, err)
		}
		return b, nil
	case *Error:
		v = struct {
			Type string `json:"type"`
			*Error
		}{TypeError, m}
	case *Pong:
		v = struct {
			Type string `json:"type"`
			*Pong
		}{TypePong, m}
	case Hello:
		return Encode(&m)
	case Input:
		return Encode(&m)
	case Ping:
		return Encode(&m)
	case Welcome:
		return Encode(&m)
	case Nodes:
		return Encode(&m)
	case Tick:
		return Encode(&m)
	case Error:
		return Encode(&m)
	case Pong:
		return Encode(&m)
	default:
		return nil, fmt.Errorf("protocol: cannot encode %T", msg)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("protocol: encode %T: %w", msg, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // drop the Encoder's newline
}

func isNilPointer(msg any) bool {
	switch m := msg.(type) {
	case *Hello:
		return m == nil
	case *Input:
		return m == nil
	case *Ping:
		return m == nil
	case *Welcome:
		return m == nil
	case *Nodes:
		return m == nil
	case *Tick:
		return m == nil
	case *Error:
		return m == nil
	case *Pong:
		return m == nil
	}
	return false
}
