package wire

import (
	"encoding/json"
	"fmt"
)

// Notice codes.
const (
	// NoticeRoomFull: the room already had its maximum of players when the join arrived.
	NoticeRoomFull = "room_full"
)

// Notice is an owner's answer to an event it refused, for the gateway holding the player's socket.
type Notice struct {
	Player string `json:"player"`
	Conn   uint64 `json:"conn"` // the refused join's seq: it names the connection
	Code   string `json:"code"`
}

// EncodeNotice encodes n for NoticeSubject.
func EncodeNotice(n Notice) []byte {
	b, _ := json.Marshal(n) // strings and an integer: cannot fail
	return b
}

// DecodeNotice decodes a notice.
func DecodeNotice(data []byte) (Notice, error) {
	var n Notice
	if err := json.Unmarshal(data, &n); err != nil || n.Player == "" || n.Code == "" {
		return Notice{}, fmt.Errorf("%w: notice %.100q", ErrBadEvent, data)
	}
	return n, nil
}
