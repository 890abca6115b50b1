package cluster

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"time"
)

// ReadCuts reads a cut file: the names of the nodes cut off, one per line (none when the file is missing). A
// process that holds the links follows such a file (Follow), so that other processes can cut and heal nodes
// (`localcluster cut` and `heal` reach the links `localcluster up` holds).
func ReadCuts(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	cut := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		cut[f] = true
	}
	return cut, nil
}

// WriteCuts writes a cut file, atomically.
func WriteCuts(path string, cut map[string]bool) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(sortedNames(cut), "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func sortedNames(set map[string]bool) []string {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Follow applies the cut file at path to l every 100 ms until ctx ends, and tells report of each change: the
// nodes cut off, sorted (none: every node connected).
func (l *Links) Follow(ctx context.Context, path string, report func(cut []string)) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cut, err := ReadCuts(path)
		if err != nil {
			continue
		}
		if names := sortedNames(cut); !slices.Equal(names, last) {
			l.Cut(cut)
			report(names)
			last = names
		}
	}
}
