package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"sigs.k8s.io/yaml"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Monitoring files: deploy/prometheus (scrape configurations), deploy/grafana (the provisioned dashboard) and
// the monitoring profile of docker-compose.yml. The dashboard's queries are checked against the /metrics of a
// real three-node cluster that has served a player.

var (
	dashboardFile   = filepath.Join(root, "deploy", "grafana", "dashboards", "tickmesh.json")
	promComposeFile = filepath.Join(root, "deploy", "prometheus", "compose.yml")
	promK8sFile     = filepath.Join(root, "deploy", "prometheus", "kubernetes.yml")
)

// scrapeLabels are the labels Prometheus adds to every series it scrapes: job and instance, and node from the
// scrape configurations here.
var scrapeLabels = []string{"job", "instance", "node"}

// defaultServices are the compose services that start without a profile.
func defaultServices(services *yNode) []string {
	var out []string
	for _, k := range services.keys {
		if services.get(k, "profiles") == nil {
			out = append(out, k)
		}
	}
	return out
}

// promtool runs `promtool check config` on file, or says why it cannot.
func promtool(t *testing.T, file string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool is not installed (Debian: apt-get install prometheus; task setup installs it): %s not checked by it", file)
		return
	}
	out, err := exec.Command(bin, "check", "config", file).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check config %s: %v\n%s", file, err, out)
	}
}

func TestComposePrometheusConf(t *testing.T) {
	want, err := ComposePrometheus().Render()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(promComposeFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(promComposeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the template's rendering: go test ./deploy -run TestComposePrometheusConf -update", promComposeFile)
	}
	promtool(t, promComposeFile)

	// One target per node service: its admin listener, named by its NODE_NAME.
	services := readCompose(t).get("services")
	var targets []PromTarget
	for _, svc := range nodeServices {
		env := services.get(svc, "environment")
		admin := env.str("ADMIN_HTTP_ADDR")
		if admin == "" {
			t.Errorf("%s: no ADMIN_HTTP_ADDR: the admin listener's default (127.0.0.1) is out of Prometheus's reach", svc)
			continue
		}
		targets = append(targets, PromTarget{Node: env.str("NODE_NAME"), Addr: net.JoinHostPort(svc, port(t, svc+" ADMIN_HTTP_ADDR", admin))})
	}
	if !slices.Equal(ComposePrometheus().Targets, targets) {
		t.Errorf("targets %v, want the node services' admin listeners %v", ComposePrometheus().Targets, targets)
	}
}

func TestPrometheusRenderRefusesWhatWouldBreakTheFile(t *testing.T) {
	ok := Prometheus{Interval: 5 * time.Second, Targets: []PromTarget{{"n1", "127.0.0.1:9091"}}}
	conf, err := ok.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scrape_interval: 5s", "scrape_timeout: 4s", `- targets: ["127.0.0.1:9091"]`, `node: "n1"`, "metrics_path: /metrics"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("rendering lacks %q:\n%s", want, conf)
		}
	}
	for name, p := range map[string]Prometheus{
		"no targets":      {Interval: 5 * time.Second},
		"short interval":  {Interval: time.Second, Targets: ok.Targets},
		"fraction":        {Interval: 2500 * time.Millisecond, Targets: ok.Targets},
		"quote":           {Interval: 5 * time.Second, Targets: []PromTarget{{`n"1`, "127.0.0.1:9091"}}},
		"newline":         {Interval: 5 * time.Second, Targets: []PromTarget{{"n1", "127.0.0.1:9091\n"}}},
		"no port":         {Interval: 5 * time.Second, Targets: []PromTarget{{"n1", "127.0.0.1"}}},
		"twice":           {Interval: 5 * time.Second, Targets: []PromTarget{{"n1", "a:1"}, {"n1", "b:1"}}},
		"multi-line note": {Generated: "a\nb", Interval: 5 * time.Second, Targets: ok.Targets},
	} {
		if _, err := p.Render(); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

// grafanaDatasources and grafanaDashboards are Grafana's provisioning files, decoded strictly.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		Editable  bool   `json:"editable"`
	} `json:"datasources"`
}

type grafanaDashboards struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `json:"path"`
			FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
		} `json:"options"`
	} `json:"providers"`
}

// composeMount maps a compose volume "./host:/container[:ro]" to its parts.
func composeMount(t *testing.T, v string) (host, container string, ro bool) {
	t.Helper()
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		t.Fatalf("volume %q", v)
	}
	return parts[0], parts[1], len(parts) == 3 && parts[2] == "ro"
}

func TestComposeMonitoringProfile(t *testing.T) {
	doc := readCompose(t)
	services := doc.get("services")
	dotenv := readDotEnv(t, filepath.Join(root, ".env.example"))
	images := map[string]*regexp.Regexp{
		"prometheus": regexp.MustCompile(`^prom/prometheus:v\d+\.\d+\.\d+$`),
		"grafana":    regexp.MustCompile(`^grafana/grafana:\d+\.\d+\.\d+$`),
	}
	mounts := map[string]map[string]string{} // service → container path → host path
	for svc, pinned := range images {
		s := services.get(svc)
		if s == nil {
			t.Fatalf("no %s service", svc)
		}
		if got := s.strs("profiles"); !slices.Equal(got, []string{"monitoring"}) {
			t.Errorf("%s: profiles %v, want [monitoring]", svc, got)
		}
		if img := s.str("image"); !pinned.MatchString(img) {
			t.Errorf("%s: image %q is not pinned to a release", svc, img)
		}
		for _, p := range s.strs("ports") {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published beyond loopback", svc, p)
			}
		}
		mounts[svc] = map[string]string{}
		for _, v := range s.strs("volumes") {
			host, container, ro := composeMount(t, v)
			mounts[svc][container] = host
			if !strings.HasPrefix(host, "./") {
				if doc.get("volumes", host) == nil {
					t.Errorf("%s: volume %s not declared", svc, host)
				}
				continue
			}
			if !ro {
				t.Errorf("%s: %s is mounted writable", svc, host)
			}
			if _, err := os.Stat(filepath.Join(root, host)); err != nil {
				t.Errorf("%s: mounts %s: %v", svc, host, err)
			}
		}
	}

	// Prometheus reads the rendered compose.yml at its default configuration path.
	if got := mounts["prometheus"]["/etc/prometheus/prometheus.yml"]; got != "./deploy/prometheus/compose.yml" {
		t.Errorf("prometheus configuration from %q, want ./deploy/prometheus/compose.yml", got)
	}
	promPort := ""
	for _, p := range services.strs("prometheus", "ports") {
		parts := strings.Split(p, ":")
		promPort = parts[len(parts)-1]
	}

	// Grafana: its admin password from .env, the provisioning directory, the dashboards where the provider
	// looks, the data source at the prometheus service.
	g := services.get("grafana")
	pw := g.str("environment", "GF_SECURITY_ADMIN_PASSWORD")
	if m := requiredVar.FindStringSubmatch(pw); m == nil || !strings.Contains(dotenv[m[1]], "replace-with") {
		t.Errorf("grafana: GF_SECURITY_ADMIN_PASSWORD %q: want ${VAR:?...} with a placeholder in .env.example", pw)
	}
	if g.str("environment", "GF_AUTH_ANONYMOUS_ENABLED") != "false" || g.str("environment", "GF_USERS_ALLOW_SIGN_UP") != "false" {
		t.Error("grafana: anonymous access and sign-up must be off")
	}
	if !slices.Equal(g.strs("depends_on"), []string{"prometheus"}) {
		t.Errorf("grafana: depends_on %v", g.strs("depends_on"))
	}
	prov := mounts["grafana"]["/etc/grafana/provisioning"]
	if prov != "./deploy/grafana/provisioning" {
		t.Fatalf("grafana provisioning from %q", prov)
	}
	var ds grafanaDatasources
	decodeYAMLFile(t, filepath.Join(root, prov, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:"+promPort || !ds.Datasources[0].IsDefault {
		t.Errorf("data sources %+v: want the default, prometheus at http://prometheus:%s", ds.Datasources, promPort)
	}
	var dp grafanaDashboards
	decodeYAMLFile(t, filepath.Join(root, prov, "dashboards", "tickmesh.yml"), &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v", dp.Providers)
	}
	dashDir := dp.Providers[0].Options.Path
	if host := mounts["grafana"][dashDir]; host != "./deploy/grafana/dashboards" {
		t.Errorf("the provider reads %s, where %q is mounted", dashDir, host)
	}
	home := g.str("environment", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	if path.Dir(home) != dashDir {
		t.Errorf("home dashboard %s is not in %s", home, dashDir)
	} else if _, err := os.Stat(filepath.Join(root, "deploy", "grafana", "dashboards", path.Base(home))); err != nil {
		t.Errorf("home dashboard: %v", err)
	}
}

func decodeYAMLFile(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestKubernetesPrometheusConfig: the pod discovery keeps exactly the StatefulSet's pods and their admin port.
func TestKubernetesPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile(promK8sFile)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		ScrapeConfigs []struct {
			JobName             string `json:"job_name"`
			MetricsPath         string `json:"metrics_path"`
			KubernetesSDConfigs []struct {
				Role       string `json:"role"`
				Namespaces struct {
					Names []string `json:"names"`
				} `json:"namespaces"`
			} `json:"kubernetes_sd_configs"`
			RelabelConfigs []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string   `json:"regex"`
				Action       string   `json:"action"`
				TargetLabel  string   `json:"target_label"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	m := readK8s(t)
	if len(conf.ScrapeConfigs) != 1 || len(conf.ScrapeConfigs[0].KubernetesSDConfigs) != 1 {
		t.Fatalf("scrape configs %+v", conf.ScrapeConfigs)
	}
	sc := conf.ScrapeConfigs[0]
	sd := sc.KubernetesSDConfigs[0]
	if sd.Role != "pod" || !slices.Equal(sd.Namespaces.Names, []string{m.kust.Namespace}) || sc.MetricsPath != "/metrics" {
		t.Errorf("discovery %+v, path %s: want pods of namespace %s, /metrics", sd, sc.MetricsPath, m.kust.Namespace)
	}
	// Evaluate the keep rule on the StatefulSet's pod: only its admin port is kept.
	meta := func(portName string) map[string]string {
		l := map[string]string{"__meta_kubernetes_pod_container_port_name": portName}
		for k, v := range m.sts.Spec.Template.Labels {
			l["__meta_kubernetes_pod_label_"+regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(k, "_")] = v
		}
		return l
	}
	kept := func(l map[string]string) bool {
		for _, r := range sc.RelabelConfigs {
			if r.Action != "keep" {
				continue
			}
			var vals []string
			for _, s := range r.SourceLabels {
				vals = append(vals, l[s])
			}
			if !regexp.MustCompile("^(?:" + r.Regex + ")$").MatchString(strings.Join(vals, ";")) {
				return false
			}
		}
		return true
	}
	c := m.container(t)
	for _, p := range c.Ports {
		if got := kept(meta(p.Name)); got != (p.Name == "admin") {
			t.Errorf("port %s: kept = %v", p.Name, got)
		}
	}
	var named bool
	for _, r := range sc.RelabelConfigs {
		named = named || (slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_name"}) && r.TargetLabel == "node")
	}
	if !named {
		t.Error("no relabeling of the pod name into the node label")
	}
	if bin, err := exec.LookPath("promtool"); err == nil {
		out, err := exec.Command(bin, "check", "config", promK8sFile).CombinedOutput()
		switch {
		case err == nil:
		case strings.Contains(string(out), "kubernetes_sd_configs not found"):
			// Debian's Prometheus is built without Kubernetes discovery.
			t.Logf("this promtool has no Kubernetes discovery: %s checked by the rules above only", promK8sFile)
		default:
			t.Errorf("promtool check config %s: %v\n%s", promK8sFile, err, out)
		}
	}
}

// exposition is what a set of /metrics pages serve: the labels of every sample name, and the le values of
// histogram buckets.
type exposition struct {
	labels map[string]map[string]bool
	le     map[string]map[string]bool
}

func (e *exposition) add(t *testing.T, page string) {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if !strings.Contains(line, "{") || strings.Contains(name, " ") {
			name, _, _ = strings.Cut(line, " ")
			rest = ""
		}
		if e.labels[name] == nil {
			e.labels[name] = map[string]bool{}
		}
		// rest: k="v",k2="v2"} value — values may hold anything but an unescaped quote.
		for rest != "" && rest[0] != '}' {
			k, after, ok := strings.Cut(rest, `="`)
			if !ok {
				t.Fatalf("metrics line %q", line)
			}
			var v strings.Builder
			i := 0
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' {
					i++
				}
				v.WriteByte(after[i])
			}
			e.labels[name][k] = true
			if k == "le" {
				if e.le[name] == nil {
					e.le[name] = map[string]bool{}
				}
				e.le[name][v.String()] = true
			}
			rest = strings.TrimPrefix(after[i+1:], ",")
		}
	}
}

// scrape reads a node's /metrics page.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// metricsURL is where Prometheus scrapes a node.
func metricsURL(m *nodetest.Member) string { return m.Node.AdminURL() + "/metrics" }

// wsClient is a minimal player: hello, then reads until a tick shows what it waits for.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	id   string
}

func dialPlayer(t *testing.T, nodeURL, roomName string) *wsClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(nodeURL, "http") + "/ws"
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn}
	c.send(map[string]any{"type": "hello", "protocol": 1, "name": "dashboard", "room": roomName, "seq": 1})
	msg := c.until(func(m map[string]any) bool { return m["type"] == "welcome" })
	c.id, _ = msg["player"].(string)
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// until reads messages until cond holds for one, for at most 30 s.
func (c *wsClient) until(cond func(map[string]any) bool) map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var m map[string]any
		if err := c.conn.ReadJSON(&m); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if cond(m) {
			return m
		}
	}
}

// acked waits for a tick that shows this player with ack >= seq.
func (c *wsClient) acked(seq float64) {
	c.t.Helper()
	c.until(func(m map[string]any) bool {
		if m["type"] != "tick" {
			return false
		}
		ps, _ := m["players"].([]any)
		for _, p := range ps {
			pm, _ := p.(map[string]any)
			if pm["id"] == c.id {
				ack, _ := pm["ack"].(float64)
				return ack >= seq
			}
		}
		return false
	})
}

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // of a collapsed row
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct {
	where, expr, legend string
}

// queries lists every expression: panel targets and query variables (label_values(metric, label) becomes the
// expression metric{label=~".+"}).
func (d dashboard) queries(t *testing.T) []dashboardQuery {
	t.Helper()
	var out []dashboardQuery
	ids := map[int]bool{}
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: data source %+v, want the dashboard's ${datasource}", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
			for _, tg := range p.Targets {
				out = append(out, dashboardQuery{fmt.Sprintf("panel %q %s", p.Title, tg.RefID), tg.Expr, tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		out = append(out, dashboardQuery{"variable " + v.Name, fmt.Sprintf(`%s{%s=~".+"}`, m[1], m[2]), ""})
	}
	return out
}

// TestDashboardQueriesReadMetricsThatARunningNodeServes starts a real three-node cluster, has it serve a player
// (a room with an owner, inputs, ticks relayed to a socket), a refused client (a server close), a stale tick (a
// fenced drop) and a lost lease (a step-down and a new acquisition), then checks every query of the dashboard
// against the nodes' /metrics: each metric name exists, each label a matcher or a grouping names exists on the
// metrics it reads (or is one Prometheus adds), each bucket bound exists, and each legend names a label the
// result has.
func TestDashboardQueriesReadMetricsThatARunningNodeServes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-node cluster behind the dashboard check")
	}
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Fatalf("dashboard without uid or title")
	}
	queries := d.queries(t)
	if len(queries) < 20 {
		t.Fatalf("%d queries: the dashboard lost its panels?", len(queries))
	}

	c := nodetest.StartCluster(t, 3)
	c.AgreedOwner(room.Lobby, 0, 30*time.Second)
	n1 := c.Member("n1")
	const roomName = "dashboard"

	// A player in a room of its own on n1: n1 campaigns for it alone and owns it.
	p := dialPlayer(t, n1.Node.URL(), roomName)
	p.acked(1)
	p.send(map[string]any{"type": "input", "seq": 2, "keys": map[string]bool{"up": false, "down": false, "left": false, "right": true}})
	p.acked(2)

	// A client with a protocol from the future: the server closes it (4500).
	u := "ws" + strings.TrimPrefix(n1.Node.URL(), "http") + "/ws"
	bad, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_ = bad.WriteJSON(map[string]any{"type": "hello", "protocol": 99, "name": "future"})
	_ = bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := bad.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 4500) {
				t.Fatalf("bad hello: %v, want close 4500", err)
			}
			break
		}
	}

	// The room's owner freezes for 3 s (its loop and renewals stall, as a stopped process's would): another node
	// takes the room over with a higher epoch, and the old owner, thawed and superseded, steps down and keeps
	// running, so its step-down is on a live node's /metrics.
	holder, epoch := c.AgreedOwner(roomName, 0, 30*time.Second)
	c.Member(holder).Node.Rooms().InjectFault(roomName, room.Fault{Until: time.Now().Add(3 * time.Second)})
	c.AgreedOwner(roomName, epoch, 30*time.Second)
	testingutil.WaitFor(t, 20*time.Second, "the step-down counted", func() bool {
		for _, m := range c.Members() {
			if strings.Contains(scrape(t, metricsURL(m)), `tickmesh_room_step_downs_total{`) {
				return true
			}
		}
		return false
	})
	p.send(map[string]any{"type": "input", "seq": 3, "keys": map[string]bool{"up": true, "down": false, "left": false, "right": false}})
	p.acked(3)

	// A late tick of the first owner's epoch: every relay drops it.
	stale := wire.AppendBundledTick(wire.NewBundle(nil), &wire.BundledTick{Room: roomName, Epoch: epoch, Seq: 1, Data: []byte{0}})
	if err := n1.Node.Mesh().Conn().Publish(wire.BundleSubject(wire.BundleShard(roomName), holder), stale); err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 10*time.Second, "the stale tick fenced", func() bool {
		return strings.Contains(scrape(t, metricsURL(n1)), `tickmesh_room_ticks_fenced_total{room="dashboard"} 1`)
	})

	exp := &exposition{labels: map[string]map[string]bool{}, le: map[string]map[string]bool{}}
	// The stream leaders report their replicas' lag: wait until some node does, then read every node.
	testingutil.WaitFor(t, 30*time.Second, "replica lag reported", func() bool {
		for _, m := range c.Members() {
			if strings.Contains(scrape(t, metricsURL(m)), "tickmesh_jetstream_replica_lag{") {
				return true
			}
		}
		return false
	})
	for _, m := range c.Members() {
		exp.add(t, scrape(t, metricsURL(m)))
	}

	promQueries(t, c, queries)

	legendLabel := regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	for _, q := range queries {
		pq, err := parsePromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(pq.selectors) == 0 {
			t.Errorf("%s: %q reads no metric", q.where, q.expr)
		}
		readable := map[string]bool{}
		for _, l := range scrapeLabels {
			readable[l] = true
		}
		for _, s := range pq.selectors {
			have, ok := exp.labels[s.metric]
			if !ok {
				t.Errorf("%s: metric %s is not on any node's /metrics", q.where, s.metric)
				continue
			}
			for l := range have {
				readable[l] = true
			}
			for _, l := range s.labels {
				if !have[l] && !slices.Contains(scrapeLabels, l) {
					t.Errorf("%s: %s has no label %q", q.where, s.metric, l)
				}
			}
			if le, ok := s.equal["le"]; ok && !exp.le[s.metric][le] {
				t.Errorf("%s: %s has no bucket le=%q", q.where, s.metric, le)
			}
		}
		for _, l := range pq.grouping {
			if !readable[l] {
				t.Errorf("%s: groups by %q, which none of its metrics has", q.where, l)
			}
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			if !slices.Contains(pq.grouping, m[1]) || m[1] == "le" {
				t.Errorf("%s: legend names {{%s}}, which the result does not keep (grouping %v)", q.where, m[1], pq.grouping)
			}
		}
	}
}

// promQueries runs every query of the dashboard on a real Prometheus that scrapes the cluster, when one is
// installed: the PromQL reader above is this test's own, Prometheus's engine is the one Grafana will ask.
func promQueries(t *testing.T, c *nodetest.Cluster, queries []dashboardQuery) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Log("prometheus is not installed (task setup installs it): the queries are not run on its engine")
		return
	}
	conf := Prometheus{Interval: 2 * time.Second}
	for _, m := range c.Members() {
		u, err := url.Parse(metricsURL(m))
		if err != nil {
			t.Fatal(err)
		}
		conf.Targets = append(conf.Targets, PromTarget{Node: m.Name, Addr: u.Host})
	}
	b, err := conf.Render()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var log bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	query := func(q string) (status, errText string, series int) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
		if err != nil {
			return "", err.Error(), 0
		}
		defer resp.Body.Close()
		var body struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return "", err.Error(), 0
		}
		return body.Status, body.Error, len(body.Data.Result)
	}
	// Two scrapes of every node, so that rate() has points.
	testingutil.WaitFor(t, 60*time.Second, "two scrapes of every node", func() bool {
		_, _, n := query(`count_over_time(up{job="tickmesh"}[1m]) >= 2`)
		return n == len(c.Members())
	})
	vars := strings.NewReplacer("$__rate_interval", "1m", "$node", ".*", "$room", ".*")
	for _, q := range queries {
		status, errText, _ := query(vars.Replace(q.expr))
		if status != "success" {
			t.Errorf("%s: Prometheus refuses %q: %s", q.where, q.expr, errText)
		}
	}
}
