package room

import "github.com/tickmesh/tickmesh/pkg/wire"

// LiveBuffer is liveBuffer, for the tests outside the package.
const LiveBuffer = liveBuffer

// BalanceCalm is balanceCalm: how long balance pauses after a sign of stream trouble.
const BalanceCalm = balanceCalm

// StoredCopiesOn makes owners take their rooms' stored copies from subject(room) instead of the room's
// wire.StoredSubject, until the test ends. Call it before the cluster starts: the terms read it.
func StoredCopiesOn(t interface{ Cleanup(func()) }, subject func(room string) string) {
	storedSubject = subject
	t.Cleanup(func() { storedSubject = wire.StoredSubject })
}
