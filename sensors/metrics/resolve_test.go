package metrics

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestResolveAddr(t *testing.T) {
	ip := netip.MustParseAddr
	nets := func(kv ...string) *container.NetworkSettingsSummary {
		m := map[string]*network.EndpointSettings{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = &network.EndpointSettings{IPAddress: ip(kv[i+1])}
		}
		return &container.NetworkSettingsSummary{Networks: m}
	}
	for _, tc := range []struct {
		name     string
		c        container.Summary
		networks []string
		want     string // "" for an error
	}{
		{"published on loopback", container.Summary{
			Ports:           []container.PortSummary{{IP: ip("127.0.0.1"), PrivatePort: 8080, PublicPort: 49153, Type: "tcp"}},
			NetworkSettings: nets("bridge", "172.17.0.2"),
		}, nil, "127.0.0.1:49153"},
		{"published on all addresses, IPv4 preferred", container.Summary{
			Ports: []container.PortSummary{
				{IP: ip("::"), PrivatePort: 8080, PublicPort: 49154, Type: "tcp"},
				{IP: ip("0.0.0.0"), PrivatePort: 8080, PublicPort: 49153, Type: "tcp"},
			},
		}, nil, "127.0.0.1:49153"},
		{"published on IPv6 only", container.Summary{
			Ports: []container.PortSummary{{IP: ip("::"), PrivatePort: 8080, PublicPort: 49154, Type: "tcp"}},
		}, nil, "[::1]:49154"},
		{"published on a specific address", container.Summary{
			Ports: []container.PortSummary{{IP: ip("10.1.2.3"), PrivatePort: 8080, PublicPort: 80, Type: "tcp"}},
		}, nil, "10.1.2.3:80"},
		{"another port published: use the network", container.Summary{
			Ports:           []container.PortSummary{{IP: ip("127.0.0.1"), PrivatePort: 9090, PublicPort: 49153, Type: "tcp"}, {PrivatePort: 8080, Type: "tcp"}},
			NetworkSettings: nets("shop", "172.20.0.5"),
		}, nil, "172.20.0.5:8080"},
		{"udp does not count", container.Summary{
			Ports:           []container.PortSummary{{IP: ip("127.0.0.1"), PrivatePort: 8080, PublicPort: 49153, Type: "udp"}},
			NetworkSettings: nets("shop", "172.20.0.5"),
		}, nil, "172.20.0.5:8080"},
		{"the network ARES shares", container.Summary{NetworkSettings: nets("a", "172.20.0.5", "b", "172.21.0.9")}, []string{"b"}, "172.21.0.9:8080"},
		{"first shared network in order", container.Summary{NetworkSettings: nets("a", "172.20.0.5", "b", "172.21.0.9")}, []string{"x", "b", "a"}, "172.21.0.9:8080"},
		{"any network by name without a list", container.Summary{NetworkSettings: nets("b", "172.21.0.9", "a", "172.20.0.5")}, nil, "172.20.0.5:8080"},
		{"no shared network", container.Summary{NetworkSettings: nets("a", "172.20.0.5")}, []string{"b"}, ""},
		{"no address on the network", container.Summary{NetworkSettings: &container.NetworkSettingsSummary{
			Networks: map[string]*network.EndpointSettings{"a": {}}}}, nil, ""},
		{"nothing at all", container.Summary{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveAddr(&tc.c, 8080, tc.networks)
			if tc.want == "" {
				if err == nil {
					t.Errorf("resolveAddr = %s, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("resolveAddr = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
