package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/pkg/node"
)

// probeClient answers within 2 s and opens a fresh connection for every request: a kept-alive connection to a
// node that was killed, frozen or cut off would hang or fail the next probe for a reason the probe is not about.
var probeClient = &http.Client{
	Timeout: 2 * time.Second,
	Transport: &http.Transport{
		DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		DisableKeepAlives: true,
	},
}

// get GETs url and decodes its JSON body into v (when v is not nil); it returns the status code.
func get(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s: %w", url, err)
	}
	return resp.StatusCode, nil
}

// Readyz GETs n's /readyz: the node's verdict, the status code (200 when ready, 0 without an answer) and the
// error of the request.
func Readyz(ctx context.Context, n Node) (node.Readiness, int, error) {
	var r node.Readiness
	code, err := get(ctx, n.URL()+"/readyz", &r)
	return r, code, err
}

// Health is one probe of a health URL, summarised for people: the code and, for a node's /readyz, the first
// thing missing.
type Health struct {
	Code   int    // 0: no answer
	Detail string // why not ready, or why no answer
}

func (h Health) String() string {
	switch {
	case h.Code == 0:
		return h.Detail
	case h.Detail != "":
		return fmt.Sprintf("%d (%s)", h.Code, h.Detail)
	default:
		return strconv.Itoa(h.Code)
	}
}

// ProbeHealth GETs a /readyz URL (a node's, or a load balancer's in front of nodes) and summarises the answer.
func ProbeHealth(ctx context.Context, url string) Health {
	var r node.Readiness
	code, err := get(ctx, url, &r)
	switch {
	case code != 0 && len(r.Missing) > 0:
		return Health{Code: code, Detail: r.Missing[0]}
	case code != 0:
		return Health{Code: code}
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return Health{Detail: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Health{Detail: "refused"}
	}
	return Health{Detail: err.Error()}
}

// View GETs n's /api/cluster.
func View(ctx context.Context, n Node) (node.ClusterView, error) {
	return ViewAt(ctx, n.AdminURL())
}

// ViewAt GETs <base>/api/cluster.
func ViewAt(ctx context.Context, base string) (node.ClusterView, error) {
	var v node.ClusterView
	code, err := get(ctx, base+"/api/cluster", &v)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET %s/api/cluster: HTTP %d", base, code)
	}
	return v, err
}

// RoomOwner is the owner and epoch of room in v ("" and 0 when it has none).
func RoomOwner(v node.ClusterView, room string) (string, uint64) {
	for _, r := range v.Rooms {
		if r.Room == room {
			return r.Owner, r.Epoch
		}
	}
	return "", 0
}

// Metrics are the samples of a /metrics page by series, written as the page writes them: the metric's name
// and, when it has labels, the labels in braces, like `tickmesh_room_ticks_total{room="lobby"}` (the Prometheus
// client sorts labels by name, so the spelling is stable).
type Metrics map[string]float64

// ReadMetrics GETs and parses n's /metrics.
func ReadMetrics(ctx context.Context, n Node) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.AdminURL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", n.Name, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads Prometheus text format: every sample by series (comments and blank lines skipped, a
// timestamp after the value ignored).
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The series ends at the last '}' when there are labels (label values may hold spaces), else at the
		// first space.
		end := strings.IndexByte(line, ' ')
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			end = i + 1
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("metrics: bad line %q", line)
		}
		fields := strings.Fields(line[end:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %s: %w", line[:end], err)
		}
		m[line[:end]] = v
	}
	return m, sc.Err()
}
