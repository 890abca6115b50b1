package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestTextFramesOfEveryLengthEncodingAreReadByAWebSocketClient(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 5800, 65535, 65536, 200_000}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.Close()
		for _, n := range sizes {
			if _, err := ws.NetConn().Write(textFrame(bytes.Repeat([]byte{'a' + byte(n%26)}, n))); err != nil {
				t.Error(err)
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	cl, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, n := range sizes {
		mt, data, err := cl.ReadMessage()
		if err != nil {
			t.Fatalf("frame of %d bytes: %v", n, err)
		}
		if mt != websocket.TextMessage || !bytes.Equal(data, bytes.Repeat([]byte{'a' + byte(n%26)}, n)) {
			t.Fatalf("frame of %d bytes: got type %d, %d bytes", n, mt, len(data))
		}
	}
}
