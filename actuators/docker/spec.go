package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// spec is what it takes to create a container like an inspected one.
type spec struct {
	name    string
	config  *container.Config
	host    *container.HostConfig
	primary string                               // network passed to create; "" for none
	nets    map[string]*network.EndpointSettings // every network to join, primary included
}

// specOf copies an inspected container's configuration. keepIPAM keeps static addresses (a
// recycle may reuse them, a clone may not). Aliases that drop matches are left out; Docker adds
// the container's short id itself.
func specOf(c container.InspectResponse, keepIPAM bool, drop func(alias string) bool) spec {
	cfg := *c.Config
	cfg.Labels = maps.Clone(c.Config.Labels)
	host := *c.HostConfig
	s := spec{name: name(c), config: &cfg, host: &host, nets: map[string]*network.EndpointSettings{}}

	mode := host.NetworkMode
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() || c.NetworkSettings == nil {
		return s // the engine sets the network stack up from NetworkMode alone
	}
	for net, ep := range c.NetworkSettings.Networks {
		if ep != nil {
			s.nets[net] = endpoint(ep, keepIPAM, drop)
		}
	}
	s.primary = string(mode)
	if mode.IsDefault() || mode == "" {
		s.primary = network.NetworkBridge
	}
	if _, ok := s.nets[s.primary]; !ok {
		// NetworkMode may name the network by id, or the container may have left it.
		found := ""
		for _, net := range slices.Sorted(maps.Keys(s.nets)) {
			if id := c.NetworkSettings.Networks[net].NetworkID; id != "" && strings.HasPrefix(id, s.primary) {
				found = net
				break
			}
		}
		if found == "" && len(s.nets) > 0 {
			found = slices.Sorted(maps.Keys(s.nets))[0]
		}
		s.primary = found
		if found != "" {
			host.NetworkMode = container.NetworkMode(found)
		}
	}
	return s
}

// endpoint keeps what a person configured on a network endpoint and nothing the engine
// assigned (ids, addresses, MAC).
func endpoint(ep *network.EndpointSettings, keepIPAM bool, drop func(string) bool) *network.EndpointSettings {
	out := &network.EndpointSettings{
		Links:      slices.Clone(ep.Links),
		DriverOpts: maps.Clone(ep.DriverOpts),
	}
	for _, al := range ep.Aliases {
		if !drop(al) && !slices.Contains(out.Aliases, al) {
			out.Aliases = append(out.Aliases, al)
		}
	}
	if keepIPAM {
		out.IPAMConfig = ep.IPAMConfig.Copy()
	}
	return out
}

// idAlias reports whether alias is the container id or its short form, which Docker adds to
// user-defined networks on its own.
func idAlias(id string) func(string) bool {
	return func(alias string) bool { return len(alias) >= 12 && strings.HasPrefix(id, alias) }
}

// create creates the container on its primary network.
func (a *Actuator) create(ctx context.Context, s spec) (string, error) {
	var nc *network.NetworkingConfig
	if s.primary != "" {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.primary: s.nets[s.primary]}}
	}
	res, err := a.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: s.name, Config: s.config, HostConfig: s.host, NetworkingConfig: nc,
	})
	if err != nil {
		return "", fmt.Errorf("create %s: %w", s.name, err)
	}
	return res.ID, nil
}

// connectAndStart joins the other networks (the engine takes one network at create time on
// older API versions) and starts the container.
func (a *Actuator) connectAndStart(ctx context.Context, id string, s spec) error {
	for _, net := range slices.Sorted(maps.Keys(s.nets)) {
		if net == s.primary {
			continue
		}
		if _, err := a.cli.NetworkConnect(ctx, net, client.NetworkConnectOptions{Container: id, EndpointConfig: s.nets[net]}); err != nil {
			return fmt.Errorf("connect to network %s: %w", net, err)
		}
	}
	if _, err := a.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// stopAndRemove stops the container gracefully and removes it, then waits until the engine
// has let go of it (and of its name). A container that is already gone is fine.
func (a *Actuator) stopAndRemove(ctx context.Context, id string, volumes bool) error {
	a.opt.Own.Expect(id)
	if _, err := a.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: a.stopSeconds()}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop: %w", err)
	}
	_, err := a.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: volumes})
	switch {
	case err == nil || cerrdefs.IsNotFound(err):
	case cerrdefs.IsConflict(err): // removal already in progress (AutoRemove): wait for it below
	default:
		return fmt.Errorf("remove: %w", err)
	}
	for {
		_, err := a.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove: still present: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
