package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsNeedNoSettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.NATSAddr != "127.0.0.1:4222" || c.ClusterAddr != "" || c.ClusterName != "tickmesh" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.DataDir != filepath.Join("data", c.Name) || c.TickRate != 20 || c.LeaseTTL != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	c, err := Load([]string{"-name", "n2", "-tick-rate", "30"}, env(map[string]string{"NODE_NAME": "n1", "TICK_RATE": "10", "HTTP_ADDR": ":9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "n2" || c.TickRate != 30 || c.HTTPAddr != ":9000" {
		t.Fatalf("got %+v", c)
	}
}

func TestGamesRuleDefaultsToCollectRoomsAndTheArena(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.Games != "collect-*=collect,*=arena" {
		t.Fatalf("games %q, err %v", c.Games, err)
	}
	c, err = Load(nil, env(map[string]string{"GAMES": "lobby=collect,*=arena"}))
	if err != nil || c.Games != "lobby=collect,*=arena" {
		t.Fatalf("GAMES: games %q, err %v", c.Games, err)
	}
}

func TestPprofIsOffUnlessAsked(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.Pprof {
		t.Fatalf("default pprof %v, err %v", c.Pprof, err)
	}
	c, err = Load(nil, env(map[string]string{"PPROF": "true"}))
	if err != nil || !c.Pprof {
		t.Fatalf("PPROF=true: pprof %v, err %v", c.Pprof, err)
	}
	c, err = Load([]string{"-pprof=false"}, env(map[string]string{"PPROF": "1"}))
	if err != nil || c.Pprof {
		t.Fatalf("-pprof=false over PPROF=1: pprof %v, err %v", c.Pprof, err)
	}
}

func TestRoutesAcceptHostPortAndURLs(t *testing.T) {
	c, err := Load([]string{"-cluster", ":6222", "-routes", "a:6222, nats-route://u:p@b:6223"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 2 || c.Routes[0].Host != "a:6222" || c.Routes[1].User.Username() != "u" {
		t.Fatalf("routes %v", c.Routes)
	}
}

func TestBadSettingsNameTheSetting(t *testing.T) {
	cases := []struct {
		args    []string
		env     map[string]string
		setting string
	}{
		{[]string{"-bogus"}, nil, "-bogus"},
		{[]string{"-games", "collect-*=collect"}, nil, "-games"},
		{nil, map[string]string{"GAMES": "Lobby=arena,*=arena"}, "-games"},
		{[]string{"-tick-rate", "x"}, nil, "-tick-rate"},
		{nil, map[string]string{"TICK_RATE": "x"}, "TICK_RATE"},
		{nil, map[string]string{"PPROF": "maybe"}, "PPROF"},
		{[]string{"-cluster", ":6222", "-routes", "nohost"}, nil, "-routes"},
		{[]string{"-cluster", ":6222", "-routes", "h:99999"}, nil, "-routes"},
		{[]string{"-cluster", ":6222", "-routes", "http://h:1"}, nil, "-routes"},
		{[]string{"-routes", "h:6222"}, nil, "-routes"},
		{[]string{"-cluster-advertise", "h:6222"}, nil, "-cluster-advertise"},
		{[]string{"-cluster", ":6222", "-cluster-advertise", ":6222"}, nil, "-cluster-advertise"},
		{[]string{"-cluster", ":6222", "-cluster-advertise", "h:x"}, nil, "-cluster-advertise"},
		{[]string{"-http", "8080"}, nil, "-http"},
		{[]string{"-name", "Bad Name"}, nil, "-name"},
		{[]string{"-lease-ttl", "1500ms"}, nil, "-lease-ttl"},
		{[]string{"-tick-rate", "0"}, nil, "-tick-rate"},
		{[]string{"-public-url", "ftp://x"}, nil, "-public-url"},
		{[]string{"-nats-config", "/does/not/exist.conf"}, nil, "-nats-config"},
		{nil, map[string]string{"CLUSTER_USER": "u"}, "CLUSTER_USER"},
		{nil, map[string]string{"CLUSTER_TLS_CERT": "/missing.pem", "CLUSTER_TLS_KEY": "/missing.key"}, "CLUSTER_TLS_CERT"},
		{nil, map[string]string{"SESSION_SECRET": "short"}, "SESSION_SECRET"},
		{[]string{"-max-conns-per-ip", "50", "-max-conns", "10"}, nil, "-max-conns-per-ip"},
		{[]string{"-steal-after", "20s"}, nil, "-steal-after"},
		{[]string{"-gc-percent", "5"}, nil, "-gc-percent"},
		{nil, map[string]string{"GC_PERCENT": "-1"}, "-gc-percent"},
		{[]string{"extra"}, nil, "arguments"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " ")+" "+strings.Join(keys(tc.env), ","), func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if ce.Setting != tc.setting {
				t.Fatalf("setting %q (%v), want %q", ce.Setting, err, tc.setting)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message spans lines: %q", err)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestGCPercentDefaultsTo50UnlessGOGCOrTheSettingSaysOtherwise(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, DefaultGCPercent},
		{nil, map[string]string{"GOGC": "200"}, 0}, // the runtime's own setting stays
		{[]string{"-gc-percent", "80"}, map[string]string{"GOGC": "200"}, 80},
		{nil, map[string]string{"GOGC": "200", "GC_PERCENT": "30"}, 30},
		{[]string{"-gc-percent", "0"}, nil, 0},
	}
	for _, tc := range cases {
		c, err := Load(tc.args, env(tc.env))
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if c.GCPercent != tc.want {
			t.Errorf("%v %v: GC percent %d, want %d", tc.args, tc.env, c.GCPercent, tc.want)
		}
	}
}
