package deploy

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/config"
)

// The compose file is checked offline: there is no Docker engine in CI and `docker compose config` needs the
// compose plugin, so docker-compose.yml is read with the strict subset reader of yamlsubset_test.go, checked
// against what the node accepts (pkg/config) and what the Dockerfile builds, and then its node environments
// are run for real as a local three-process cluster.

const root = ".."

var nodeServices = []string{"node1", "node2", "node3"}

// secretEnv are the settings that must come from .env, never from the file.
var secretEnv = []string{"CLUSTER_USER", "CLUSTER_PASSWORD", "CLUSTER_TOKEN", "SESSION_SECRET", "ADMIN_PASSWORD", "VIEWER_PASSWORD", "SYS_PASSWORD"}

// requiredSecrets are the secrets every node service must have.
var requiredSecrets = []string{"CLUSTER_USER", "CLUSTER_PASSWORD", "SESSION_SECRET", "ADMIN_PASSWORD", "VIEWER_PASSWORD", "SYS_PASSWORD"}

// requiredVar is compose's "${NAME:?message}": the value of NAME, and compose stops when it is unset or empty.
var requiredVar = regexp.MustCompile(`^\$\{([A-Z_][A-Z0-9_]*):\?[^}]+\}$`)

func readCompose(t *testing.T) *yNode {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAMLSubset(string(b))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return doc
}

// knownEnv lists the environment variables the node reads, from pkg/config/config.go: the env argument of the
// loader's flag methods (l.strFlag, l.intFlag, ...) and the argument of getenv.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	file := filepath.Join(root, "pkg", "config", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var name string
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			name = fn.Name
		case *ast.SelectorExpr:
			name = fn.Sel.Name
		default:
			return true
		}
		arg := -1
		switch name {
		case "strFlag", "intFlag", "int64Flag", "floatFlag", "boolFlag", "durFlag":
			arg = 2
		case "getenv":
			arg = 0
		}
		if arg < 0 || len(call.Args) <= arg {
			return true
		}
		if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				known[s] = true
			}
		}
		return true
	})
	for _, must := range []string{"NODE_NAME", "HTTP_ADDR", "ADMIN_HTTP_ADDR", "CLUSTER_ROUTES", "DATA_DIR", "TRUSTED_PROXIES", "DEV_INSECURE",
		"SESSION_SECRET", "SYS_PASSWORD", "VIEWER_PASSWORD", "ADMIN_PASSWORD", "CLUSTER_USER"} {
		if !known[must] {
			t.Fatalf("found no %s in %s: has the way settings are read changed? update knownEnv (found %v)", must, file, known)
		}
	}
	return known
}

// readDotEnv reads KEY=value lines.
func readDotEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", file, line)
		}
		env[k] = v
	}
	return env
}

// port returns the port of a host:port, failing the test on anything else.
func port(t *testing.T, what, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil || p == "" {
		t.Fatalf("%s %q: want host:port", what, addr)
	}
	return p
}

func TestComposeFile(t *testing.T) {
	doc := readCompose(t)
	known := knownEnv(t)
	services := doc.get("services")
	if services == nil || services.kind != yMap {
		t.Fatal("no services")
	}
	if want := append(slices.Clone(nodeServices), "nginx"); !slices.Equal(defaultServices(services), want) {
		t.Fatalf("services without a profile %v, want %v", defaultServices(services), want)
	}
	dotenv := readDotEnv(t, filepath.Join(root, ".env.example"))

	routePort := map[string]string{} // service → container route port
	httpPort := map[string]string{}  // service → container HTTP port
	for _, svc := range nodeServices {
		env := services.get(svc, "environment")
		if env == nil || env.kind != yMap {
			t.Fatalf("%s: no environment mapping", svc)
		}
		routePort[svc] = port(t, svc+" CLUSTER_ADDR", env.str("CLUSTER_ADDR"))
		httpPort[svc] = port(t, svc+" HTTP_ADDR", env.str("HTTP_ADDR"))
	}
	var image string
	for _, svc := range nodeServices {
		s := services.get(svc)
		env := s.get("environment")
		if s.str("build") != "." {
			t.Errorf("%s: build %q, want .", svc, s.str("build"))
		}
		if image == "" {
			image = s.str("image")
		} else if s.str("image") != image {
			t.Errorf("%s: image %q, others use %q", svc, s.str("image"), image)
		}

		// Every variable is a setting the node reads; secrets only from .env.
		for _, k := range env.keys {
			v := env.m[k]
			if v.kind != yScalar {
				t.Errorf("%s: %s is not a string", svc, k)
				continue
			}
			if !known[k] {
				t.Errorf("%s: %s is not a setting of the node (pkg/config)", svc, k)
			}
			m := requiredVar.FindStringSubmatch(v.scalar)
			switch {
			case slices.Contains(secretEnv, k) && m == nil:
				t.Errorf("%s: %s must come from .env as ${%s:?...}, not a value in the file", svc, k, k)
			case m == nil && strings.Contains(v.scalar, "$"):
				t.Errorf("%s: %s=%q: only ${NAME:?message} interpolation is used here", svc, k, v.scalar)
			case m != nil && dotenv[m[1]] == "":
				t.Errorf("%s: %s needs %s, which .env.example does not define", svc, k, m[1])
			}
		}
		for _, k := range requiredSecrets {
			if env.get(k) == nil {
				t.Errorf("%s: %s not set", svc, k)
			}
		}
		if env.get("DEV_INSECURE") != nil {
			t.Errorf("%s: sets the development switch", svc)
		}
		if got := env.str("TRUSTED_PROXIES"); got != ComposeNginxIP {
			t.Errorf("%s: TRUSTED_PROXIES %q, want nginx's address %s and nothing else", svc, got, ComposeNginxIP)
		}
		if adm := port(t, svc+" ADMIN_HTTP_ADDR", env.str("ADMIN_HTTP_ADDR")); adm == httpPort[svc] {
			t.Errorf("%s: the admin listener shares the HTTP port", svc)
		} else if want := "http://" + svc + ":" + adm; env.str("ADMIN_PUBLIC_URL") != want {
			t.Errorf("%s: ADMIN_PUBLIC_URL %q, want %q (the cluster view moves between nodes inside the network)", svc, env.str("ADMIN_PUBLIC_URL"), want)
		}

		if got := env.str("NODE_NAME"); got != svc {
			t.Errorf("%s: NODE_NAME %q", svc, got)
		}
		var routes []string
		for _, r := range strings.Split(env.str("CLUSTER_ROUTES"), ",") {
			host, p, err := net.SplitHostPort(r)
			if err != nil || routePort[host] != p {
				t.Errorf("%s: route %q does not name another node's CLUSTER_ADDR port", svc, r)
			}
			routes = append(routes, host)
		}
		var others []string
		for _, o := range nodeServices {
			if o != svc {
				others = append(others, o)
			}
		}
		if slices.Sort(routes); !slices.Equal(routes, others) {
			t.Errorf("%s: routes to %v, want %v", svc, routes, others)
		}

		// Ports: nothing but node1's NATS client port, on loopback; browsers come through nginx.
		natsPort := port(t, svc+" NATS_ADDR", env.str("NATS_ADDR"))
		wantPorts := []string(nil)
		if svc == "node1" {
			wantPorts = []string{"127.0.0.1:4222:" + natsPort}
		}
		if got := s.strs("ports"); !slices.Equal(got, wantPorts) {
			t.Errorf("%s: ports %q, want %q (only nginx is published, and node1's NATS client port on 127.0.0.1)", svc, got, wantPorts)
		}
		if want := "http://localhost:" + nginxHostPort(t, services); env.str("PUBLIC_URL") != want {
			t.Errorf("%s: PUBLIC_URL %q, want nginx's %q (the only published HTTP port)", svc, env.str("PUBLIC_URL"), want)
		}

		// Data directory on the service's named volume.
		vols := s.strs("volumes")
		want := svc + "-data:" + env.str("DATA_DIR")
		if len(vols) != 1 || vols[0] != want {
			t.Errorf("%s: volumes %v, want [%s]", svc, vols, want)
		}
		if doc.get("volumes", svc+"-data") == nil {
			t.Errorf("volume %s-data not declared", svc)
		}

		hc := s.strs("healthcheck", "test")
		if wantHC := []string{"CMD", "/healthcheck", "http://127.0.0.1:" + httpPort[svc] + "/readyz"}; !slices.Equal(hc, wantHC) {
			t.Errorf("%s: healthcheck %q, want %q", svc, hc, wantHC)
		}
	}

	// nginx: the rendered compose.conf, in front of every node's HTTP port, after the nodes are healthy.
	lb := services.get("nginx")
	if img := lb.str("image"); img != "nginx:1.27-alpine" {
		t.Errorf("nginx image %q", img)
	}
	conf := ComposeNginx()
	if ports := lb.strs("ports"); !slices.Equal(ports, []string{"8080:" + conf.Listen}) {
		t.Errorf("nginx ports %v, want [8080:%s]", ports, conf.Listen)
	}
	if ip := lb.str("networks", "default", "ipv4_address"); ip != ComposeNginxIP {
		t.Errorf("nginx address %q, want %s (the nodes' TRUSTED_PROXIES)", ip, ComposeNginxIP)
	}
	subnets := doc.get("networks", "default", "ipam", "config")
	if subnets == nil || subnets.kind != ySeq || len(subnets.items) != 1 || subnets.items[0].str("subnet") != ComposeSubnet {
		t.Errorf("networks.default.ipam.config: want one subnet %s", ComposeSubnet)
	} else if p := netip.MustParsePrefix(ComposeSubnet); !p.Contains(netip.MustParseAddr(ComposeNginxIP)) {
		t.Errorf("nginx's address %s is outside the subnet %s", ComposeNginxIP, ComposeSubnet)
	}
	if vols := lb.strs("volumes"); !slices.Equal(vols, []string{"./deploy/nginx/compose.conf:/etc/nginx/nginx.conf:ro"}) {
		t.Errorf("nginx volumes %v", vols)
	}
	var upstreams []string
	for _, svc := range nodeServices {
		upstreams = append(upstreams, svc+":"+httpPort[svc])
		if c := lb.str("depends_on", svc, "condition"); c != "service_healthy" {
			t.Errorf("nginx depends on %s with condition %q, want service_healthy", svc, c)
		}
	}
	if !slices.Equal(conf.Upstreams, upstreams) {
		t.Errorf("compose.conf upstreams %v, want %v", conf.Upstreams, upstreams)
	}
}

// nginxHostPort is the host port nginx publishes.
func nginxHostPort(t *testing.T, services *yNode) string {
	t.Helper()
	ports := services.strs("nginx", "ports")
	if len(ports) != 1 {
		t.Fatalf("nginx ports %q: want one", ports)
	}
	return strings.Split(ports[0], ":")[0]
}

func TestEnvExample(t *testing.T) {
	env := readDotEnv(t, filepath.Join(root, ".env.example"))
	for _, k := range requiredSecrets {
		if env[k] == "" {
			t.Errorf(".env.example: %s missing", k)
		}
	}
	for _, f := range []struct{ file, line string }{{".gitignore", "/.env"}, {".dockerignore", ".env"}, {".dockerignore", "**/node_modules"}} {
		b, err := os.ReadFile(filepath.Join(root, f.file))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Split(string(b), "\n"), f.line) {
			t.Errorf("%s lacks %q", f.file, f.line)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	var froms []string
	for _, line := range strings.Split(s, "\n") {
		if f, ok := strings.CutPrefix(line, "FROM "); ok {
			froms = append(froms, strings.Fields(f)[0])
		}
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	want := []string{"node:20-bookworm-slim", "golang:" + string(goVersion[1]) + "-bookworm", "gcr.io/distroless/static-debian12:nonroot"}
	if !slices.Equal(froms, want) {
		t.Errorf("stages %v, want %v", froms, want)
	}
	for _, line := range []string{
		"RUN npm ci --no-audit --no-fund", "RUN npm run build",
		"COPY --from=frontend /src/frontend/dist/app ./frontend/dist/app",
		"ENV CGO_ENABLED=0", "USER nonroot:nonroot", `VOLUME ["/data"]`, `ENTRYPOINT ["/tickmesh-node"]`,
		"COPY --from=build /out/healthcheck /healthcheck",
	} {
		if !strings.Contains(s, line) {
			t.Errorf("Dockerfile lacks %q", line)
		}
	}
	for _, pkg := range []string{"./cmd/node", "./cmd/healthcheck"} {
		if !strings.Contains(s, pkg) {
			t.Errorf("Dockerfile does not build %s", pkg)
		}
	}
}

// drawnDotEnv is a .env with random secrets, as an operator's should be.
func drawnDotEnv(t *testing.T) map[string]string {
	t.Helper()
	s, err := config.NewSecrets(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// TestEnvExampleValuesAreRefused runs the node's configuration on node1's environment with each secret of
// .env.example in turn (the others random): a node must not start with a value copied from the template.
func TestEnvExampleValuesAreRefused(t *testing.T) {
	services := readCompose(t).get("services")
	example := readDotEnv(t, filepath.Join(root, ".env.example"))
	ports := map[string][4]int{}
	for _, svc := range nodeServices {
		ports[svc] = [4]int{1, 2, 3, 4}
	}
	base := composeEnv(t, services, "node1", drawnDotEnv(t), ports, t.TempDir())
	lookup := func(env []string) func(string) string {
		m := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return func(k string) string { return m[k] }
	}
	if _, err := config.Load(nil, lookup(base)); err != nil {
		t.Fatalf("node1's environment with random secrets: %v", err)
	}
	// The variables the node services read; others in .env.example belong to other services (Grafana's).
	nodeVars := map[string]bool{}
	for _, svc := range nodeServices {
		env := services.get(svc, "environment")
		for _, k := range env.keys {
			if m := requiredVar.FindStringSubmatch(env.m[k].scalar); m != nil {
				nodeVars[m[1]] = true
			}
		}
	}
	for k, v := range example {
		if k == "CLUSTER_USER" || !nodeVars[k] {
			continue // a user name, not a secret; or not a node's
		}
		env := append(slices.Clone(base), k+"="+v)
		_, err := config.Load(nil, lookup(env))
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Setting != k {
			t.Errorf(".env.example's %s accepted by a node (err %v)", k, err)
		}
	}
}

func TestYAMLSubsetReader(t *testing.T) {
	doc, err := parseYAMLSubset(`# comment
a: 1
b:
  c: "x: y" # trailing
  d: 'it''s'
  e:
    - one
    - "two"
  f: ["CMD", "/x", 'y']
  g:
h: ${X:?set X}
i:
  - k: v
    l: w
  - m: "n"
`)
	if err != nil {
		t.Fatal(err)
	}
	if doc.str("a") != "1" || doc.str("b", "c") != "x: y" || doc.str("b", "d") != "it's" || doc.str("h") != "${X:?set X}" {
		t.Errorf("scalars: %q %q %q %q", doc.str("a"), doc.str("b", "c"), doc.str("b", "d"), doc.str("h"))
	}
	if !slices.Equal(doc.strs("b", "e"), []string{"one", "two"}) || !slices.Equal(doc.strs("b", "f"), []string{"CMD", "/x", "y"}) {
		t.Errorf("sequences: %q %q", doc.strs("b", "e"), doc.strs("b", "f"))
	}
	if g := doc.get("b", "g"); g == nil || g.kind != yNull {
		t.Errorf("null: %+v", g)
	}
	if i := doc.get("i"); i == nil || i.kind != ySeq || len(i.items) != 2 || i.items[0].str("k") != "v" || i.items[0].str("l") != "w" || i.items[1].str("m") != "n" {
		t.Errorf("sequence of mappings: %+v", i)
	}
	for name, bad := range map[string]string{
		"anchor":                  "a: &x 1\n",
		"alias":                   "a: *x\n",
		"merge":                   "a:\n  <<: x\n",
		"tab":                     "a:\n\tb: 1\n",
		"block scalar":            "a: |\n  text\n",
		"flow map":                "a: {b: 1}\n",
		"seq of maps, misaligned": "a:\n  - b: 1\n     c: 2\n",
		"seq of maps, nested seq": "a:\n  - b: 1\n    - c\n",
		"duplicate":               "a: 1\na: 2\n",
		"bad indent":              "a:\n    b: 1\n  c: 2\n",
		"document":                "---\na: 1\n",
		"unterminated":            "a: \"x\n",
		"escape":                  "a: \"x\\n\"\n",
		"tag":                     "a: !!str 1\n",
		"plain with ': '":         "a: b: c\n",
	} {
		if _, err := parseYAMLSubset(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// composeEnv is a node service's environment made runnable on this machine: secrets from dotenv, and only what
// exists solely inside the containers rewritten (service names → 127.0.0.1 with free ports, /data → a temporary
// directory).
func composeEnv(t *testing.T, services *yNode, svc string, dotenv map[string]string, ports map[string][4]int, dataDir string) []string {
	t.Helper()
	env := services.get(svc, "environment")
	var out []string
	for _, k := range env.keys {
		v := env.m[k].scalar
		if m := requiredVar.FindStringSubmatch(v); m != nil {
			v = dotenv[m[1]]
		}
		p := ports[svc]
		switch k {
		case "HTTP_ADDR":
			v = fmt.Sprintf("127.0.0.1:%d", p[0])
		case "NATS_ADDR":
			v = fmt.Sprintf("127.0.0.1:%d", p[1])
		case "CLUSTER_ADDR":
			v = fmt.Sprintf("127.0.0.1:%d", p[2])
		case "CLUSTER_ROUTES":
			var routes []string
			for _, r := range strings.Split(v, ",") {
				host, _, _ := net.SplitHostPort(r)
				other, ok := ports[host]
				if !ok {
					t.Fatalf("%s: route to unknown service %q", svc, host)
				}
				routes = append(routes, fmt.Sprintf("127.0.0.1:%d", other[2]))
			}
			v = strings.Join(routes, ",")
		case "DATA_DIR":
			v = dataDir
		case "PUBLIC_URL":
			v = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		case "ADMIN_HTTP_ADDR":
			v = fmt.Sprintf("127.0.0.1:%d", p[3])
		case "ADMIN_PUBLIC_URL":
			v = fmt.Sprintf("http://127.0.0.1:%d", p[3])
		}
		out = append(out, k+"="+v)
	}
	return out
}

var (
	nodeBinOnce sync.Once
	nodeBinPath string
	nodeBinErr  error
	binDir      string // removed by TestMain
)

// nodeBinary builds ./cmd/node once per test run.
func nodeBinary(t *testing.T) string {
	t.Helper()
	nodeBinOnce.Do(func() {
		nodeBinPath = filepath.Join(binDir, "tickmesh-node")
		build := exec.Command("go", "build", "-o", nodeBinPath, "./cmd/node")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			nodeBinErr = fmt.Errorf("go build ./cmd/node: %v\n%s", err, out)
		}
	})
	if nodeBinErr != nil {
		t.Fatal(nodeBinErr)
	}
	return nodeBinPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if binDir, err = os.MkdirTemp("", "tickmesh-deploy-test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestComposeNodesStart runs the real node binary with each node service's environment as a three-process
// cluster and waits until every node is ready: the settings are ones the node accepts and they form a cluster.
func TestComposeNodesStart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-process run of the compose environment")
	}
	services := readCompose(t).get("services")
	dotenv := drawnDotEnv(t) // .env.example's values are placeholders, which the nodes refuse
	tmp := t.TempDir()
	bin := nodeBinary(t)

	ports := map[string][4]int{}
	for _, svc := range nodeServices {
		ports[svc] = [4]int{freePort(t), freePort(t), freePort(t), freePort(t)}
	}
	type proc struct {
		cmd  *exec.Cmd
		log  string
		done chan error
	}
	procs := map[string]*proc{}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for svc, p := range procs {
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop within 10 s of SIGTERM", svc)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	for _, svc := range nodeServices {
		env := composeEnv(t, services, svc, dotenv, ports, filepath.Join(tmp, "data", svc))
		p := &proc{log: filepath.Join(tmp, svc+".log"), done: make(chan error, 1)}
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin)
		p.cmd.Env = env // nothing from this process's environment
		p.cmd.Stdout, p.cmd.Stderr = f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		go func() { p.done <- p.cmd.Wait() }()
		procs[svc] = p
	}

	logs := func() string {
		var b strings.Builder
		for _, svc := range nodeServices {
			out, _ := os.ReadFile(procs[svc].log)
			fmt.Fprintf(&b, "--- %s\n%s\n", svc, out[max(0, len(out)-2500):])
		}
		return b.String()
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		for svc, p := range procs {
			select {
			case err := <-p.done:
				p.done <- err
				t.Fatalf("%s exited: %v\n%s", svc, err, logs())
			default:
			}
		}
		ready := 0
		for _, svc := range nodeServices {
			u := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[svc][0]), Path: "/readyz"}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u.String(), nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready++
				}
			}
		}
		if ready == len(nodeServices) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes ready after 90 s\n%s", ready, len(nodeServices), logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
}
