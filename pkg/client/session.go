package client

import "sync"

// State is a player's identity in one room: the resume token from the last welcome and the last sequence number
// used.
type State struct {
	Resume string
	Seq    uint64
}

// Store keeps a player's State across connections and, for a store that persists it, across runs of the
// program, like the browser's sessionStorage. Save is called before every frame that uses a new sequence
// number is sent.
type Store interface {
	Load(room string) (State, error)
	Save(room string, s State) error
}

// MemoryStore keeps states in memory; it is safe for concurrent use. The zero value is ready.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]State
}

// Load returns the room's state (zero when none was saved).
func (s *MemoryStore) Load(room string) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[room], nil
}

// Save stores the room's state.
func (s *MemoryStore) Save(room string, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]State{}
	}
	s.m[room] = st
	return nil
}

// session is the identity a Client uses: the Store's state, the player id of the last welcome.
type session struct {
	store  Store
	room   string
	state  State
	player string
}

// next allocates the next sequence number and saves it before it is sent.
func (s *session) next() (uint64, error) {
	s.state.Seq++
	return s.state.Seq, s.store.Save(s.room, s.state)
}

// welcome stores the identity from a welcome; the counter moves past the server's ack.
func (s *session) welcome(player, resume string, ack uint64) error {
	s.player = player
	if resume != "" {
		s.state.Resume = resume
	}
	s.state.Seq = max(s.state.Seq, ack)
	return s.store.Save(s.room, s.state)
}

// clear forgets the token and the counter (after close code 4501).
func (s *session) clear() error {
	s.state, s.player = State{}, ""
	return s.store.Save(s.room, s.state)
}
