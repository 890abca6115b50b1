package deploy

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"strings"
	"text/template"
	"time"
)

//go:embed prometheus/prometheus.yml.tmpl
var prometheusTemplate string

// Prometheus is a scrape configuration of Tickmesh nodes at fixed addresses (prometheus/prometheus.yml.tmpl).
// Kubernetes finds its pods instead: prometheus/kubernetes.yml.
type Prometheus struct {
	Generated string        // one comment line saying where the file comes from
	Interval  time.Duration // scrape and rule evaluation interval (whole seconds)
	Targets   []PromTarget
}

// PromTarget is one node: its name (the node label of every series) and its admin listener's host:port.
type PromTarget struct {
	Node string
	Addr string
}

// ComposePrometheus is the configuration of the prometheus service of docker-compose.yml's monitoring profile
// (prometheus/compose.yml): each node service's admin listener, :9090 inside the compose network.
func ComposePrometheus() Prometheus {
	return Prometheus{
		Generated: "Generated from deploy/prometheus/prometheus.yml.tmpl (deploy.ComposePrometheus); regenerate with: go test ./deploy -run TestComposePrometheusConf -update",
		Interval:  5 * time.Second,
		Targets:   []PromTarget{{"node1", "node1:9090"}, {"node2", "node2:9090"}, {"node3", "node3:9090"}},
	}
}

// Render fills the template. It refuses values that could change the file's structure.
func (p Prometheus) Render() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	t, err := template.New("prometheus.yml").Option("missingkey=error").Parse(prometheusTemplate)
	if err != nil {
		return nil, fmt.Errorf("prometheus template: %w", err)
	}
	data := struct {
		Generated         string
		Interval, Timeout string
		Targets           []PromTarget
	}{p.Generated, promDuration(p.Interval), promDuration(p.Interval - time.Second), p.Targets}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("prometheus template: %w", err)
	}
	return b.Bytes(), nil
}

// promDuration writes d in whole seconds, as Prometheus reads it.
func promDuration(d time.Duration) string { return fmt.Sprintf("%ds", int(d/time.Second)) }

func (p Prometheus) check() error {
	if p.Interval < 2*time.Second || p.Interval%time.Second != 0 {
		return fmt.Errorf("prometheus: interval %v: want whole seconds, at least 2 s", p.Interval)
	}
	if len(p.Targets) == 0 {
		return fmt.Errorf("prometheus: no targets")
	}
	if strings.ContainsAny(p.Generated, "\r\n") {
		return fmt.Errorf("prometheus: the generated note must be one line")
	}
	seen := map[string]bool{}
	for _, tg := range p.Targets {
		for _, v := range []string{tg.Node, tg.Addr} {
			if v == "" || strings.ContainsAny(v, "\"'\\{}$#[] \t\r\n") {
				return fmt.Errorf("prometheus: target %q/%q: empty, or a character not allowed here", tg.Node, tg.Addr)
			}
		}
		if _, port, err := net.SplitHostPort(tg.Addr); err != nil || port == "" {
			return fmt.Errorf("prometheus: target %s at %q: want host:port", tg.Node, tg.Addr)
		}
		if seen[tg.Node] {
			return fmt.Errorf("prometheus: node %s listed twice", tg.Node)
		}
		seen[tg.Node] = true
	}
	return nil
}
