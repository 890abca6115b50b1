package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tickmesh/tickmesh/pkg/config"
)

// The Kubernetes manifests (deploy/k8s) are checked offline: every file is decoded strictly (an unknown or
// duplicated field is an error) into the Kubernetes API types, and then the relations between the objects are
// checked, the ones a typo breaks without any API server complaining: selectors, port names, probe paths, the
// routes and the Secret's keys. The StatefulSet's environment is then loaded by the node's own configuration
// code, with the Secret's placeholders (refused) and with random values (accepted).

var k8sDir = filepath.Join(root, "deploy", "k8s")

// shutdownSeconds is the most a node takes from SIGTERM to exit (cmd/node: within 10 s).
const shutdownSeconds = 10

type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
}

// k8sManifests are the decoded objects of deploy/k8s.
type k8sManifests struct {
	kust      kustomization
	namespace *corev1.Namespace
	config    *corev1.ConfigMap
	services  map[string]*corev1.Service
	sts       *appsv1.StatefulSet
	pdb       *policyv1.PodDisruptionBudget
	netpol    *networkingv1.NetworkPolicy
	secret    *corev1.Secret // secret.example.yaml, not a resource of the kustomization
}

// decodeStrict decodes a one-object YAML file into the API type its apiVersion and kind name, refusing unknown
// and duplicated fields.
func decodeStrict(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(b, &tm); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	default:
		t.Fatalf("%s: unexpected object %s %s", file, tm.APIVersion, tm.Kind)
	}
	if err := unmarshalStrict(b, obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return obj
}

// unmarshalStrict decodes YAML as the API server does: field names matched case-sensitively (encoding/json
// would take "clusterIp" for clusterIP), unknown and duplicated fields refused.
func unmarshalStrict(b []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func readK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{services: map[string]*corev1.Service{}}
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalStrict(b, &m.kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if m.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || m.kust.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %s %s", m.kust.APIVersion, m.kust.Kind)
	}
	// Every manifest is either a resource of the kustomization or the Secret's template.
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != "secret.example.yaml" && !slices.Contains(m.kust.Resources, base) {
			t.Errorf("%s is not a resource of kustomization.yaml", base)
		}
	}
	add := func(file string, obj any) {
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespace = o
		case *corev1.ConfigMap:
			m.config = o
		case *corev1.Secret:
			m.secret = o
		case *corev1.Service:
			m.services[o.Name] = o
		case *appsv1.StatefulSet:
			m.sts = o
		case *policyv1.PodDisruptionBudget:
			m.pdb = o
		case *networkingv1.NetworkPolicy:
			m.netpol = o
		}
	}
	for _, r := range m.kust.Resources {
		obj := decodeStrict(t, filepath.Join(k8sDir, r))
		if _, isSecret := obj.(*corev1.Secret); isSecret {
			t.Errorf("%s: a Secret among the kustomization's resources would overwrite the real one", r)
		}
		add(r, obj)
	}
	add("secret.example.yaml", decodeStrict(t, filepath.Join(k8sDir, "secret.example.yaml")))
	for what, missing := range map[string]bool{
		"Namespace": m.namespace == nil, "ConfigMap": m.config == nil, "StatefulSet": m.sts == nil,
		"PodDisruptionBudget": m.pdb == nil, "NetworkPolicy": m.netpol == nil, "Secret template": m.secret == nil,
	} {
		if missing {
			t.Fatalf("no %s in deploy/k8s", what)
		}
	}
	return m
}

// container is the StatefulSet's only container.
func (m *k8sManifests) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := m.sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet: %d containers, want 1", len(cs))
	}
	return &cs[0]
}

// containerPort resolves a port given by name or number to the container's port number (0 when it has none).
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

// envValue is a literal env value of the container, with $(VAR) references left as they are.
func envValue(t *testing.T, c *corev1.Container, name string) string {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if e.ValueFrom != nil {
				t.Fatalf("%s: from a reference, want a literal value", name)
			}
			return e.Value
		}
	}
	t.Fatalf("container has no %s", name)
	return ""
}

func portOf(t *testing.T, what, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		t.Fatalf("%s %q: want host:port", what, addr)
	}
	return int32(n)
}

func selects(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("%s: selector: %v", what, err)
	}
	if s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %q does not select the pods (labels %v)", what, s, podLabels)
	}
}

func TestKubernetesManifests(t *testing.T) {
	m := readK8s(t)
	sts := m.sts
	c := m.container(t)
	pod := sts.Spec.Template
	known := knownEnv(t)

	if m.kust.Namespace != m.namespace.Name || m.secret.Namespace != m.namespace.Name {
		t.Errorf("namespaces: kustomization %q, Namespace %q, Secret template %q", m.kust.Namespace, m.namespace.Name, m.secret.Namespace)
	}

	// The StatefulSet: three pods with stable names, started together, updated one at a time.
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Fatalf("replicas %v, want 3", sts.Spec.Replicas)
	}
	replicas := int(*sts.Spec.Replicas)
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: OrderedReady would wait for tickmesh-0 to be ready, which it is only with a majority", sts.Spec.PodManagementPolicy)
	}
	if sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		t.Errorf("updateStrategy %q, want RollingUpdate", sts.Spec.UpdateStrategy.Type)
	}
	selects(t, "StatefulSet", sts.Spec.Selector, pod.Labels)

	// Routes: the headless Service gives every pod its DNS name; the seed routes are exactly those names.
	headless, ok := m.services[sts.Spec.ServiceName]
	if !ok {
		t.Fatalf("serviceName %q: no such Service", sts.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless)", headless.Name, headless.Spec.ClusterIP)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses must be true: nodes dial each other before they are ready", headless.Name)
	}
	selects(t, "Service "+headless.Name, &metav1.LabelSelector{MatchLabels: headless.Spec.Selector}, pod.Labels)
	routePort := portOf(t, "CLUSTER_ADDR", envValue(t, c, "CLUSTER_ADDR"))
	if got := containerPort(c, intstr.FromString("routes")); got != routePort {
		t.Errorf("container port routes = %d, CLUSTER_ADDR port %d", got, routePort)
	}
	if len(headless.Spec.Ports) != 1 || containerPort(c, headless.Spec.Ports[0].TargetPort) != routePort || headless.Spec.Ports[0].Port != routePort {
		t.Errorf("Service %s ports %+v: want the route port %d", headless.Name, headless.Spec.Ports, routePort)
	}
	var want []string
	for i := range replicas {
		want = append(want, net.JoinHostPort(fmt.Sprintf("%s-%d.%s", sts.Name, i, headless.Name), fmt.Sprint(routePort)))
	}
	if got := strings.Split(envValue(t, c, "CLUSTER_ROUTES"), ","); !slices.Equal(got, want) {
		t.Errorf("CLUSTER_ROUTES %v, want the StatefulSet's pods %v", got, want)
	}
	if got, wantAdv := envValue(t, c, "CLUSTER_ADVERTISE"), fmt.Sprintf("$(NODE_NAME).%s:%d", headless.Name, routePort); got != wantAdv {
		t.Errorf("CLUSTER_ADVERTISE %q, want %q", got, wantAdv)
	}

	// The environment: settings the node reads, from literals, the pod's name, the ConfigMap and the Secret.
	defined := map[string]bool{}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("env %s is not a setting of the node (pkg/config)", e.Name)
		}
		for _, ref := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(e.Value, -1) {
			if !defined[ref[1]] {
				t.Errorf("env %s refers to $(%s), which no earlier variable defines (Kubernetes would leave it as is)", e.Name, ref[1])
			}
		}
		defined[e.Name] = true
		switch vf := e.ValueFrom; {
		case vf == nil:
			if slices.Contains(secretEnv, e.Name) || strings.HasSuffix(e.Name, "_PASSWORD") || e.Name == "SESSION_SECRET" {
				t.Errorf("env %s: a secret must come from the Secret, not a literal", e.Name)
			}
		case vf.FieldRef != nil:
			if e.Name != "NODE_NAME" || vf.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("env %s from field %s: only NODE_NAME, from metadata.name", e.Name, vf.FieldRef.FieldPath)
			}
		case vf.ConfigMapKeyRef != nil:
			if vf.ConfigMapKeyRef.Name != m.config.Name {
				t.Errorf("env %s: ConfigMap %q, want %q", e.Name, vf.ConfigMapKeyRef.Name, m.config.Name)
			} else if _, ok := m.config.Data[vf.ConfigMapKeyRef.Key]; !ok {
				t.Errorf("env %s: ConfigMap %s has no key %q", e.Name, m.config.Name, vf.ConfigMapKeyRef.Key)
			}
		case vf.SecretKeyRef != nil:
			if vf.SecretKeyRef.Name != m.secret.Name {
				t.Errorf("env %s: Secret %q, want %q", e.Name, vf.SecretKeyRef.Name, m.secret.Name)
			} else if _, ok := m.secret.StringData[vf.SecretKeyRef.Key]; !ok {
				t.Errorf("env %s: the Secret's template has no key %q", e.Name, vf.SecretKeyRef.Key)
			}
		default:
			t.Errorf("env %s: unexpected source", e.Name)
		}
	}
	for _, must := range []string{"NODE_NAME", "CLUSTER_USER", "CLUSTER_PASSWORD", "SESSION_SECRET", "ADMIN_PASSWORD", "VIEWER_PASSWORD", "SYS_PASSWORD", "DATA_DIR", "ADMIN_HTTP_ADDR"} {
		if !defined[must] {
			t.Errorf("env %s not set", must)
		}
	}

	// Ports and probes: the public listener serves /readyz and /healthz, the admin listener /metrics.
	httpPort := portOf(t, "HTTP_ADDR", envValue(t, c, "HTTP_ADDR"))
	adminPort := portOf(t, "ADMIN_HTTP_ADDR", envValue(t, c, "ADMIN_HTTP_ADDR"))
	if containerPort(c, intstr.FromString("http")) != httpPort || containerPort(c, intstr.FromString("admin")) != adminPort {
		t.Errorf("container ports %+v: want http %d and admin %d", c.Ports, httpPort, adminPort)
	}
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || containerPort(c, p.probe.HTTPGet.Port) != httpPort {
			t.Errorf("%s probe: GET %s on port %v, want %s on the HTTP port %d", name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, httpPort)
		}
	}

	// Shutdown: the preStop sleep, then the node's own drain, within the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Fatalf("preStop: want a sleep (the image has no shell)")
	}
	grace := pod.Spec.TerminationGracePeriodSeconds
	if need := c.Lifecycle.PreStop.Sleep.Seconds + shutdownSeconds; grace == nil || *grace < need {
		t.Errorf("terminationGracePeriodSeconds %v: the preStop sleep and the node's shutdown need %d", grace, need)
	}

	// Storage: one volume per pod for JetStream, mounted at DATA_DIR.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	var mounted bool
	for _, vm := range c.VolumeMounts {
		mounted = mounted || (vm.Name == pvc.Name && vm.MountPath == envValue(t, c, "DATA_DIR") && !vm.ReadOnly)
	}
	if !mounted {
		t.Errorf("volume %s is not mounted writable at DATA_DIR %s", pvc.Name, envValue(t, c, "DATA_DIR"))
	}
	if st := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; st.IsZero() || !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("volumeClaimTemplate %s: storage %v, access %v", pvc.Name, st.String(), pvc.Spec.AccessModes)
	}

	// Resources and a non-root, read-only container (the image's user is nonroot, 65532).
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q := c.Resources.Requests[r]; q.IsZero() {
			t.Errorf("no %s request", r)
		}
	}
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil || *psc.FSGroup != 65532 ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("security context: want non-root, fsGroup 65532 (the volume writable by the image's user), a read-only root and no privilege escalation")
	}

	// The WebSocket Service: every ready pod, on the HTTP port.
	ws, ok := m.services["tickmesh"]
	if !ok {
		t.Fatal("no Service tickmesh")
	}
	selects(t, "Service tickmesh", &metav1.LabelSelector{MatchLabels: ws.Spec.Selector}, pod.Labels)
	if ws.Spec.ClusterIP == corev1.ClusterIPNone || ws.Spec.PublishNotReadyAddresses {
		t.Error("Service tickmesh: must balance over ready pods only")
	}
	if len(ws.Spec.Ports) != 1 || containerPort(c, ws.Spec.Ports[0].TargetPort) != httpPort {
		t.Errorf("Service tickmesh ports %+v: want the HTTP port %d", ws.Spec.Ports, httpPort)
	}

	// At most one pod down at a time.
	if mu := m.pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) || m.pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v, want 1 (and no minAvailable)", mu)
	}
	selects(t, "PodDisruptionBudget", m.pdb.Spec.Selector, pod.Labels)

	// The NetworkPolicy covers the pods, and names ports that exist.
	selects(t, "NetworkPolicy", &m.netpol.Spec.PodSelector, pod.Labels)
	for _, rule := range m.netpol.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || containerPort(c, *p.Port) == 0 {
				t.Errorf("NetworkPolicy: port %v is not a port of the container", p.Port)
			}
		}
		for _, from := range rule.From {
			if from.PodSelector != nil && from.NamespaceSelector == nil {
				selects(t, "NetworkPolicy peer", from.PodSelector, pod.Labels)
			}
		}
	}
}

// k8sEnv is the environment the StatefulSet gives pod i, with secrets from secrets.
func k8sEnv(t *testing.T, m *k8sManifests, i int, secrets map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range m.container(t).Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = ref.ReplaceAllStringFunc(e.Value, func(s string) string { return env[ref.FindStringSubmatch(s)[1]] })
		case vf.FieldRef != nil:
			env[e.Name] = fmt.Sprintf("%s-%d", m.sts.Name, i)
		case vf.ConfigMapKeyRef != nil:
			env[e.Name] = m.config.Data[vf.ConfigMapKeyRef.Key]
		case vf.SecretKeyRef != nil:
			env[e.Name] = secrets[vf.SecretKeyRef.Key]
		}
	}
	return env
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestKubernetesEnvironmentIsAValidNodeConfiguration loads each pod's environment with the node's own
// configuration code: with random secrets, as the README creates them, it is accepted; with the template's
// placeholders it is refused, whichever single secret is left a placeholder.
func TestKubernetesEnvironmentIsAValidNodeConfiguration(t *testing.T) {
	m := readK8s(t)
	random := map[string]string{}
	for k, v := range m.secret.StringData {
		if k == "cluster-user" {
			random[k] = v // a user name, not a secret
			continue
		}
		if !strings.Contains(v, "replace-with") {
			t.Errorf("Secret template: %s = %q is not an obvious placeholder", k, v)
		}
		random[k] = randomHex(t, 32)
	}
	for i := range int(*m.sts.Spec.Replicas) {
		env := k8sEnv(t, m, i, random)
		cfg, err := config.Load(nil, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("pod %d with random secrets: %v", i, err)
		}
		if cfg.Node.Name != fmt.Sprintf("%s-%d", m.sts.Name, i) {
			t.Errorf("pod %d: node name %q", i, cfg.Node.Name)
		}
	}
	for k, placeholder := range m.secret.StringData {
		if k == "cluster-user" {
			continue
		}
		secrets := maps.Clone(random)
		secrets[k] = placeholder
		env := k8sEnv(t, m, 0, secrets)
		_, err := config.Load(nil, func(k string) string { return env[k] })
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("the template's %s (%q) is accepted by the node: %v", k, placeholder, err)
		}
	}
}

// TestKustomizeBuilds runs kubectl's built-in kustomize over deploy/k8s, offline: it must build, with every
// object in the namespace.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the strict decoding in TestKubernetesManifests still covers every file")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	docs := strings.Split(string(out), "\n---\n")
	m := readK8s(t)
	if len(docs) != len(m.kust.Resources) {
		t.Errorf("kustomize built %d objects from %d resources", len(docs), len(m.kust.Resources))
	}
	for _, d := range docs {
		if !strings.Contains(d, "kind: Namespace") && !strings.Contains(d, "namespace: "+m.kust.Namespace) {
			t.Errorf("an object outside namespace %s:\n%s", m.kust.Namespace, d)
		}
	}
}
