package docker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// scaleOut adds one replica to the service, cloned from a running (preferably healthy)
// replica, up to the replica bound. It returns the new container's name.
func (a *Actuator) scaleOut(ctx context.Context, service string) (string, error) {
	reps, err := a.replicas(ctx, service)
	if err != nil {
		return "", err
	}
	src, err := a.source(ctx, service, reps)
	if err != nil {
		return "", err
	}
	limit := a.opt.MaxReplicas
	if v, ok := src.Config.Labels[LabelMaxReplicas]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "", fmt.Errorf("%s: label %s: must be a positive integer (got %q)", name(src), LabelMaxReplicas, v)
		}
		limit = n
	}
	if len(reps) >= limit {
		return "", fmt.Errorf("%w: service %q already has %d replicas (max %d)", ErrRefused, service, len(reps), limit)
	}

	srcName := name(src)
	drop := func(al string) bool { return idAlias(src.ID)(al) || al == srcName }
	s := specOf(src, false, drop)
	s.config.Hostname = ""
	s.config.Labels[LabelScaled] = "true"
	s.host.PortBindings = ephemeralPorts(s.host.PortBindings)

	var id string
	for attempt := 0; ; attempt++ {
		s.name = cloneName(srcName, service)
		id, err = a.create(ctx, s)
		if err == nil {
			break
		}
		if !cerrdefs.IsConflict(err) || attempt == 2 { // a conflict is a name already taken
			return "", err
		}
	}
	if err := a.connectAndStart(ctx, id, s); err != nil {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opt.Timeout)
		defer cancel()
		if rmErr := a.stopAndRemove(rmCtx, id, true); rmErr != nil {
			return "", fmt.Errorf("%s: %w (and removing it failed: %v)", s.name, err, rmErr)
		}
		return "", fmt.Errorf("%s (removed again): %w", s.name, err)
	}
	return s.name, nil
}

// source picks the replica scale_out clones: running, healthy before unknown before starting
// before unhealthy, one a person created before one ARES added, then by name.
func (a *Actuator) source(ctx context.Context, service string, reps []container.Summary) (container.InspectResponse, error) {
	type cand struct {
		c    container.InspectResponse
		rank int
	}
	var cands []cand
	for _, r := range reps {
		if r.State != container.StateRunning {
			continue
		}
		c, err := a.replica(ctx, service, r.ID)
		if err != nil {
			return container.InspectResponse{}, err
		}
		if !c.State.Running {
			continue
		}
		rank := 1 // no healthcheck
		if h := c.State.Health; h != nil {
			switch h.Status {
			case container.Healthy:
				rank = 0
			case container.Starting:
				rank = 2
			default:
				rank = 3
			}
		}
		rank *= 2
		if c.Config.Labels[LabelScaled] == "true" {
			rank++
		}
		cands = append(cands, cand{c, rank})
	}
	if len(cands) == 0 {
		return container.InspectResponse{}, fmt.Errorf("no running replica of service %q to clone", service)
	}
	best := slices.MinFunc(cands, func(x, y cand) int {
		return cmp.Or(cmp.Compare(x.rank, y.rank), cmp.Compare(name(x.c), name(y.c)))
	})
	return best.c, nil
}

var (
	cloneSuffix   = regexp.MustCompile(`-ares-[0-9a-f]{6}$`)
	replicaSuffix = regexp.MustCompile(`-[0-9]+$`)
)

// cloneName is "<source name without -N>-ares-<6 random hex>".
func cloneName(src, service string) string {
	base := replicaSuffix.ReplaceAllString(cloneSuffix.ReplaceAllString(src, ""), "")
	if base == "" {
		base = service
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base + "-ares-" + hex.EncodeToString(b)
}

// ephemeralPorts drops the bindings that name a fixed host port: a clone would conflict with
// its source on them. Ephemeral bindings (no host port, or "0") stay.
func ephemeralPorts(pm network.PortMap) network.PortMap {
	if pm == nil {
		return nil
	}
	out := network.PortMap{}
	for _, p := range slices.SortedFunc(maps.Keys(pm), func(x, y network.Port) int { return cmp.Compare(x.String(), y.String()) }) {
		var keep []network.PortBinding
		for _, b := range pm[p] {
			if b.HostPort == "" || b.HostPort == "0" {
				keep = append(keep, b)
			}
		}
		if len(keep) > 0 {
			out[p] = keep
		}
	}
	return out
}

// scaleIn removes the newest replica that ARES added, never one a person created and never
// the last running one. It returns "removed <name>".
func (a *Actuator) scaleIn(ctx context.Context, service string) (string, error) {
	reps, err := a.replicas(ctx, service)
	if err != nil {
		return "", err
	}
	running := 0
	var scaled []container.InspectResponse
	for _, r := range reps {
		if r.State == container.StateRunning {
			running++
		}
		if r.Labels[LabelScaled] != "true" {
			continue
		}
		c, err := a.replica(ctx, service, r.ID)
		if err != nil {
			return "", err
		}
		if c.Config.Labels[LabelScaled] == "true" {
			scaled = append(scaled, c)
		}
	}
	if len(scaled) == 0 {
		return "", fmt.Errorf("%w: no ARES-scaled replica to remove in service %q", ErrRefused, service)
	}
	slices.SortFunc(scaled, func(x, y container.InspectResponse) int { // newest first
		return cmp.Or(created(y).Compare(created(x)), cmp.Compare(name(x), name(y)))
	})
	for _, c := range scaled {
		if c.State.Running && running <= 1 {
			continue // the last running replica stays, scaled or not
		}
		if err := a.stopAndRemove(ctx, c.ID, true); err != nil {
			return "", fmt.Errorf("%s: %w", name(c), err)
		}
		return "removed " + name(c), nil
	}
	return "", fmt.Errorf("%w: removing an ARES-scaled replica would leave service %q with no running replica", ErrRefused, service)
}

func created(c container.InspectResponse) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, c.Created)
	return t
}
