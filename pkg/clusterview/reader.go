package clusterview

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Message is one Server-Sent Event as a Go client (a test, a tool) reads it from the stream.
type Message struct {
	ID    string
	Event string
	Data  string
}

// Reader reads the messages of an event stream.
type Reader struct {
	r *bufio.Reader
}

// NewReader reads messages from r (a response body).
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

// ErrLineTooLong is returned for a line above MaxLine bytes.
var ErrLineTooLong = errors.New("event stream line too long")

// MaxLine bounds one line of the stream a Reader accepts.
const MaxLine = 1 << 20

// Next returns the next message with an event or data (a bare retry hint or a comment is skipped).
func (r *Reader) Next() (Message, error) {
	var m Message
	var data []string
	for {
		line, err := r.readLine()
		if err != nil {
			return m, err
		}
		if line == "" {
			if m.Event == "" && data == nil {
				continue
			}
			m.Data = strings.Join(data, "\n")
			if m.Event == "" {
				m.Event = "message"
			}
			return m, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.ID = value
		case "event":
			m.Event = value
		case "data":
			data = append(data, value)
		}
	}
}

func (r *Reader) readLine() (string, error) {
	var b strings.Builder
	for {
		chunk, more, err := r.r.ReadLine()
		if err != nil {
			return "", err
		}
		b.Write(chunk)
		if b.Len() > MaxLine {
			return "", fmt.Errorf("read event stream: %w", ErrLineTooLong)
		}
		if !more {
			return b.String(), nil
		}
	}
}
