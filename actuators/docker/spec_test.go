package docker

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/ares-sre/ares/engine"
)

func TestServiceOf(t *testing.T) {
	tests := []struct {
		labels map[string]string
		name   string
		want   string
	}{
		{map[string]string{LabelService: "cart", LabelCompose: "c"}, "/shop-cart-1", "cart"},
		{map[string]string{LabelCompose: "c"}, "/shop-cart-1", "c"},
		{nil, "/shop-cart-1", "shop-cart-1"},
	}
	for _, tc := range tests {
		if got := serviceOf(tc.labels, tc.name); got != tc.want {
			t.Errorf("serviceOf(%v, %q) = %q, want %q", tc.labels, tc.name, got, tc.want)
		}
	}
}

func TestCloneName(t *testing.T) {
	tests := []struct{ src, want string }{
		{"shop-cart-1", "shop-cart"},
		{"shop-cart-12", "shop-cart"},
		{"shop-cart-ares-0a1b2c", "shop-cart"}, // a clone of a clone does not grow its name
		{"cart", "cart"},
		{"-1", "svc"},
	}
	for _, tc := range tests {
		got := cloneName(tc.src, "svc")
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + `-ares-[0-9a-f]{6}$`).MatchString(got) {
			t.Errorf("cloneName(%q) = %q, want %s-ares-<6 hex>", tc.src, got, tc.want)
		}
	}
	if cloneName("a-1", "a") == cloneName("a-1", "a") {
		t.Error("two clone names are equal")
	}
}

func TestEphemeralPorts(t *testing.T) {
	p80, p81 := network.MustParsePort("80/tcp"), network.MustParsePort("81/tcp")
	lo := netip.MustParseAddr("127.0.0.1")
	in := network.PortMap{
		p80: {{HostIP: lo, HostPort: "8080"}, {HostIP: lo, HostPort: ""}},
		p81: {{HostPort: "9000"}},
	}
	got := ephemeralPorts(in)
	if len(got) != 1 || len(got[p80]) != 1 || got[p80][0].HostPort != "" {
		t.Errorf("ephemeralPorts = %v, want only the ephemeral binding of 80/tcp", got)
	}
	if len(in[p80]) != 2 {
		t.Error("ephemeralPorts modified its input")
	}
}

func TestSpecOf(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	c := container.InspectResponse{
		ID:         id,
		Name:       "/shop-cart-1",
		Config:     &container.Config{Image: "shop:1", Hostname: "0123456789ab", Labels: map[string]string{"a": "b"}},
		HostConfig: &container.HostConfig{NetworkMode: "front"},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"back": {Aliases: []string{"0123456789ab", "cart", "db-client"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.0.0.9")}},
			"front": {Aliases: []string{"0123456789ab", "cart", "cart"}, NetworkID: "n1", EndpointID: "e1",
				IPAddress: netip.MustParseAddr("10.1.0.2")},
		}},
	}
	s := specOf(c, true, idAlias(id))
	if s.name != "shop-cart-1" || s.primary != "front" {
		t.Errorf("name %q primary %q, want shop-cart-1 and front", s.name, s.primary)
	}
	if got := s.nets["front"]; !slices.Equal(got.Aliases, []string{"cart"}) || got.EndpointID != "" || got.IPAddress.IsValid() {
		t.Errorf("front endpoint = %+v, want alias cart only and nothing engine-assigned", got)
	}
	if got := s.nets["back"]; !slices.Equal(got.Aliases, []string{"cart", "db-client"}) || got.IPAMConfig == nil {
		t.Errorf("back endpoint = %+v, want aliases cart, db-client and the static address", got)
	}
	s.config.Labels["x"] = "y"
	if _, ok := c.Config.Labels["x"]; ok {
		t.Error("specOf shares the label map with the inspected container")
	}
	if s := specOf(c, false, idAlias(id)); s.nets["back"].IPAMConfig != nil {
		t.Error("keepIPAM=false kept a static address")
	}

	c.HostConfig = &container.HostConfig{NetworkMode: "default"}
	c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"bridge": {}}
	if s := specOf(c, true, idAlias(id)); s.primary != "bridge" {
		t.Errorf("default network mode: primary %q, want bridge", s.primary)
	}
	c.HostConfig = &container.HostConfig{NetworkMode: "host"}
	if s := specOf(c, true, idAlias(id)); s.primary != "" || len(s.nets) != 0 {
		t.Errorf("host network mode: primary %q nets %v, want none", s.primary, s.nets)
	}
}

// TestActWithoutEngine covers the answers that need no engine.
func TestActWithoutEngine(t *testing.T) {
	a := New(nil, Options{}, nil)
	tests := []struct {
		action engine.Decision
		want   string
	}{
		{engine.Decision{Action: "reboot", Service: "s", Replica: "s-1"}, `docker: reboot s-1: unknown action "reboot"`},
		{engine.Decision{Action: engine.ActNotify, Service: "s"}, "docker: notify s: notify is not a docker action"},
		{engine.Decision{Action: engine.ActRecycle, Service: "s"}, "docker: recycle s: recycle needs a replica"},
	}
	for _, tc := range tests {
		out, err := a.Act(context.Background(), engine.Action{Decision: tc.action, Verdict: engine.VerdictAdmit})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Act(%s) error = %v, want prefix %q", tc.action.Action, err, tc.want)
		}
		if out.Result != engine.ResultError || errors.Is(err, ErrRefused) {
			t.Errorf("Act(%s) outcome %+v", tc.action.Action, out)
		}
	}
}
