package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// ResolveAddr returns the host:port at which ARES reaches port of container c (the metrics
// sensor and `ares chaos run` both scrape replicas this way):
//
//  1. the port published on the host for it, at 127.0.0.1 when it is published on a loopback
//     or wildcard address (IPv4 preferred), else at the address it is published on;
//  2. else c's address on the first of networks it is attached to (ARES in a container on
//     the same network), or, with no networks given, on any of its networks, by name.
func ResolveAddr(c *container.Summary, port uint16, networks []string) (string, error) {
	best, bestRank := "", 0
	for _, p := range c.Ports {
		if p.PrivatePort != port || p.PublicPort == 0 || (p.Type != "" && p.Type != "tcp") {
			continue
		}
		host, rank := publishedHost(p.IP)
		if rank > bestRank {
			best, bestRank = net.JoinHostPort(host, strconv.Itoa(int(p.PublicPort))), rank
		}
	}
	if best != "" {
		return best, nil
	}
	if c.NetworkSettings == nil || len(c.NetworkSettings.Networks) == 0 {
		return "", fmt.Errorf("port %d not published and no network", port)
	}
	nets := networks
	if len(nets) == 0 {
		for name := range c.NetworkSettings.Networks {
			nets = append(nets, name)
		}
		slices.Sort(nets)
	}
	for _, name := range nets {
		ep := c.NetworkSettings.Networks[name]
		if ep == nil {
			continue
		}
		if ip := ep.IPAddress; ip.IsValid() && !ip.IsUnspecified() {
			return net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(port))), nil
		}
		if ip := ep.GlobalIPv6Address; ip.IsValid() && !ip.IsUnspecified() {
			return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), nil
		}
	}
	if len(networks) > 0 {
		return "", fmt.Errorf("port %d not published and no address on networks %v", port, networks)
	}
	return "", errors.New("port not published and no network address")
}

// publishedHost maps the host address a port is published on to the address to dial and a
// preference: loopback and wildcard IPv4 first, then their IPv6 forms, then a specific address.
func publishedHost(ip netip.Addr) (string, int) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.Is4() && ip.IsUnspecified():
		return "127.0.0.1", 4
	case ip.Is4() && ip.IsLoopback():
		return ip.String(), 4
	case ip.IsUnspecified() || ip.IsLoopback():
		return "::1", 3
	case ip.Is4():
		return ip.String(), 2
	}
	return ip.String(), 1
}
