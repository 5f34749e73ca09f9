package docker

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// recycle replaces a replica by a fresh container built from its own configuration: same
// name, config, host config, networks and aliases. It returns "new id <id>".
func (a *Actuator) recycle(ctx context.Context, service, replica string) (string, error) {
	c, err := a.replica(ctx, service, replica)
	if err != nil {
		return "", err
	}
	s := specOf(c, true, idAlias(c.ID))
	if s.config.Hostname == shortID(c.ID) {
		s.config.Hostname = "" // the engine's default; the new container gets its own
	}
	if err := a.stopAndRemove(ctx, c.ID, false); err != nil {
		return "", err
	}
	a.log.Info("recycle: removed", "service", service, "replica", s.name, "id", shortID(c.ID))

	// From here on the replica is gone: finish even if the caller's deadline is about to pass.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opt.Timeout)
	defer cancel()
	id, err := a.create(ctx, s)
	if err != nil {
		first := err
		if cerrdefs.IsNotFound(err) && c.Image != "" && c.Image != s.config.Image {
			s.config.Image = c.Image // the tag is gone: use the image the old container ran
		} else {
			time.Sleep(250 * time.Millisecond)
		}
		if id, err = a.create(ctx, s); err != nil {
			return "", fmt.Errorf("container %s (old id %s) was removed and could not be re-created, twice: %w (first attempt: %v)",
				s.name, shortID(c.ID), err, first)
		}
	}
	if err := a.connectAndStart(ctx, id, s); err != nil {
		return "", fmt.Errorf("re-created %s as %s: %w", s.name, shortID(id), err)
	}
	return "new id " + id, nil
}
