package journal

import (
	"context"
	"errors"
	"strings"

	"github.com/ares-sre/ares/engine"
)

var _ engine.ActionJournal = Multi(nil)

// idSep joins the members' intent ids into Multi's: one field per member, empty for members
// that do not record intents.
const idSep = "\x1f"

// Intent records a's intent in every member that records intents. It fails when any of them
// fails (the engine then does not carry the action out); the members that succeeded still
// get the outcome.
func (m Multi) Intent(ctx context.Context, tick uint64, a engine.Action) (string, error) {
	ids := make([]string, len(m))
	var errs []error
	for i, j := range m {
		if aj, ok := j.(engine.ActionJournal); ok {
			id, err := aj.Intent(ctx, tick, a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ids[i] = id
		}
	}
	return strings.Join(ids, idSep), errors.Join(errs...)
}

// Outcome records a's outcome in every member whose Intent succeeded.
func (m Multi) Outcome(ctx context.Context, id string, a engine.Action) error {
	ids := strings.Split(id, idSep)
	var errs []error
	for i, j := range m {
		aj, ok := j.(engine.ActionJournal)
		if !ok || i >= len(ids) || ids[i] == "" {
			continue
		}
		if err := aj.Outcome(ctx, ids[i], a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
