package swarm

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/engine"
)

var _ engine.Waker = (*Sensor)(nil)

// Watch wakes the engine when a task's container dies or changes health on the node ARES talks
// to, and when a service or a node changes (a manager sees those for the whole swarm), so that
// the tick after a crash does not wait for the interval. It reconnects after the stream breaks
// and returns when ctx ends.
func (s *Sensor) Watch(ctx context.Context, wake func(reason string)) error {
	backoff := time.Second
	for {
		err := s.watchOnce(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("swarm: event stream broken; ticks follow the interval until it is back", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Sensor) watchOnce(ctx context.Context, wake func(string)) error {
	f := client.Filters{}.Add("type", string(events.ContainerEventType), string(events.ServiceEventType), string(events.NodeEventType))
	ev := s.cli.Events(ctx, client.EventsListOptions{Filters: f})
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("events stream closed")
			}
			return err
		case m := <-ev.Messages:
			if reason := wakeReason(m); reason != "" {
				wake(reason)
			}
		}
	}
}

// wakeReason is "event:<type>:<action>" for the events that change the facts, else "".
func wakeReason(m events.Message) string {
	action, _, _ := strings.Cut(string(m.Action), ":") // "health_status: unhealthy"
	switch m.Type {
	case events.ContainerEventType:
		if m.Actor.Attributes["com.docker.swarm.task.id"] == "" {
			return "" // not a swarm task's container
		}
		switch events.Action(action) {
		case events.ActionDie, events.ActionOOM, events.ActionHealthStatus:
			return "event:" + action
		}
	case events.ServiceEventType, events.NodeEventType:
		return "event:" + string(m.Type) + ":" + action
	}
	return ""
}
