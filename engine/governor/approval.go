package governor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Approval errors (aliases of the engine's, which the dashboard maps to 404 and 409).
var (
	ErrUnknownApproval = engine.ErrUnknownApproval
	ErrApprovalClosed  = engine.ErrApprovalClosed
)

// keepDecided is how long approvals that are no longer pending stay listed.
const keepDecided = time.Hour

func approvalKey(d engine.Decision) string { return d.Action + " " + d.Target() }

// gate holds back d, which needs approval, until a person approves it: it lets d through
// (why "") when an approval for the same action and target was granted, and otherwise opens
// a pending approval (or names the one already pending, or the rejection in force). g.mu held.
func (g *Governor) gate(d engine.Decision, now time.Time, dryRun bool) (why, id string) {
	key := approvalKey(d)
	var pending *engine.Approval
	for _, ap := range g.appr {
		if approvalKey(ap.Decision) != key {
			continue
		}
		switch ap.Status {
		case engine.ApprovalApproved:
			return "", ap.ID
		case engine.ApprovalPending:
			pending = ap
		}
	}
	if rj := g.rejected[key]; rj != nil {
		if now.Before(rj.Expires) {
			return fmt.Sprintf("approval %s was rejected by %s: %s (not asked again before %s)", rj.ID, rj.DecidedBy, rj.Note,
				rj.Expires.UTC().Format(time.RFC3339)), rj.ID
		}
		delete(g.rejected, key)
	}
	if pending != nil {
		return fmt.Sprintf("awaiting approval %s (expires %s)", pending.ID, pending.Expires.UTC().Format(time.RFC3339)), pending.ID
	}
	if dryRun {
		return "needs approval (dry run: none requested)", ""
	}
	ap := &engine.Approval{ID: newApprovalID(), Decision: d, Status: engine.ApprovalPending, Created: now.UTC(),
		Expires: now.Add(g.opt.ApprovalTTL).UTC()}
	g.appr[ap.ID] = ap
	return fmt.Sprintf("awaiting approval %s (expires %s)", ap.ID, ap.Expires.Format(time.RFC3339)), ap.ID
}

// expireApprovals ends the approvals not decided (or, approved, not carried out) within
// ApprovalTTL and forgets those decided more than keepDecided ago. g.mu held.
func (g *Governor) expireApprovals(now time.Time) {
	for id, ap := range g.appr {
		switch ap.Status {
		case engine.ApprovalPending, engine.ApprovalApproved:
			if !now.Before(ap.Expires) {
				ap.Status = engine.ApprovalExpired
			}
		default:
			if now.Sub(ap.Expires) > keepDecided {
				delete(g.appr, id)
			}
		}
	}
}

// Approvals lists the pending approvals and those decided within the last hour, newest first.
func (g *Governor) Approvals(now time.Time) []engine.Approval {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireApprovals(now)
	out := make([]engine.Approval, 0, len(g.appr))
	for _, ap := range g.appr {
		out = append(out, *ap)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Decide approves or rejects the pending approval id on behalf of by, with a note. An
// approved action goes through every other check again on its next decision (the caller may
// submit it at once) and must be carried out within ApprovalTTL; a rejected one is not asked
// for again within ApprovalTTL.
func (g *Governor) Decide(id string, approve bool, by, note string, now time.Time) (engine.Approval, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireApprovals(now)
	ap := g.appr[id]
	if ap == nil {
		return engine.Approval{}, fmt.Errorf("%w: %q", ErrUnknownApproval, id)
	}
	if ap.Status != engine.ApprovalPending {
		return *ap, fmt.Errorf("%w: %s is %s", ErrApprovalClosed, id, ap.Status)
	}
	ap.DecidedBy, ap.DecidedAt, ap.Note = by, now.UTC(), note
	ap.Expires = now.Add(g.opt.ApprovalTTL).UTC()
	if approve {
		ap.Status = engine.ApprovalApproved
	} else {
		ap.Status = engine.ApprovalRejected
		g.rejected[approvalKey(ap.Decision)] = ap
	}
	return *ap, nil
}

func newApprovalID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
