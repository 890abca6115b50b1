package arena

// Spawn returns the deterministic spawn point of player id in a room seeded with seed: a point of [0, Width] x
// [0, Height] derived from FNV-1a of id mixed with the seed by splitmix64. It depends on nothing else, so a
// player that is removed and joins again spawns at the same place.
func Spawn(seed uint64, id string, cfg Config) (x, y int) {
	a := splitmix64(seed ^ fnv1a64(id))
	b := splitmix64(a)
	w := uint64(max(cfg.Width, 0)) + 1
	h := uint64(max(cfg.Height, 0)) + 1
	return int(a % w), int(b % h)
}

// fnv1a64 is the 64-bit FNV-1a hash of s.
func fnv1a64(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// splitmix64 is the output function of the SplitMix64 generator applied to x.
func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
