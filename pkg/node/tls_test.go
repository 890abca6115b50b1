package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// writeCerts makes a CA and one certificate for 127.0.0.1 (server and client use: routes dial both ways).
func writeCerts(t *testing.T) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tickmesh test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("node.pem", "CERTIFICATE", der), write("node.key", "EC PRIVATE KEY", kb), write("ca.pem", "CERTIFICATE", caDER)
}

func TestRoutesWithTLSAndPasswordFormAReplicatedCluster(t *testing.T) {
	cert, key, ca := writeCerts(t)
	c := nodetest.StartCluster(t, 3, func(cfg *config.Config) {
		cfg.ClusterTLSCert, cfg.ClusterTLSKey, cfg.ClusterTLSCA = cert, key, ca
		cfg.ClusterUser, cfg.ClusterPassword = "route", "a-long-route-password"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv1, err := c.Member("n1").Node.Mesh().EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "tls", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv1.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	kv3, err := c.Member("n3").Node.Mesh().EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "tls", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 10*time.Second, "value through TLS routes", func() bool {
		e, err := kv3.Get(ctx, "k")
		return err == nil && string(e.Value()) == "v"
	})
	if !c.Member("n1").Node.Mesh().Routed("n3") {
		t.Fatal("no route n1-n3")
	}
}

func TestClientPortRequiresCredentialsWhenConfigured(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *config.Config) {
		cfg.ClientUser, cfg.ClientPassword = "operator", "operator-password"
	})
	url := c.Member("n1").Node.Mesh().ClientURL()
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	nc, err := nats.Connect(url, nats.UserInfo("operator", "operator-password"))
	if err != nil {
		t.Fatalf("connect with credentials: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.KeyValue(ctx, "owners"); err != nil {
		t.Fatalf("the operator user sees the app account's buckets: %v", err)
	}
	// The system account's user works too (nats server list).
	sys, err := nats.Connect(url, nats.UserInfo("sys", "sys"))
	if err != nil {
		t.Fatalf("system user: %v", err)
	}
	sys.Close()
}
