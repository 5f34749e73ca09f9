package dashboard

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Approver holds the actions waiting for a person's approval (implemented by
// *governor.Governor).
type Approver interface {
	// Approvals lists the pending approvals and the recently decided ones, newest first.
	Approvals(now time.Time) []engine.Approval
	// Decide approves or rejects a pending approval; engine.ErrUnknownApproval when there is
	// no such id, engine.ErrApprovalClosed when it was already decided or expired.
	Decide(id string, approve bool, by, note string, now time.Time) (engine.Approval, error)
}

// ApprovalRequest is the body of POST /api/v1/approvals/{id}.
type ApprovalRequest struct {
	Decision string `json:"decision"` // approve|reject
	Reason   string `json:"reason"`   // required to reject (or as "why")
	Why      string `json:"why,omitempty"`
}

// ApprovalResult is the answer to an approval decision.
type ApprovalResult struct {
	Approval engine.Approval `json:"approval"`
	Note     string          `json:"note"`
}

// ApprovalList is the answer of GET /api/v1/approvals.
type ApprovalList struct {
	Approvals []engine.Approval `json:"approvals"`
}

func (s *Server) decideApproval(c caller, id string, req ApprovalRequest) (ApprovalResult, error) {
	if s.deps.Approver == nil {
		return ApprovalResult{}, unavailable("the governor")
	}
	id = strings.TrimSpace(id)
	if id == "" || checkName("id", id) != nil {
		return ApprovalResult{}, badRequest("path: not a valid approval id (got %q)", id)
	}
	var approve bool
	switch strings.TrimSpace(req.Decision) {
	case "approve":
		approve = true
	case "reject":
	default:
		return ApprovalResult{}, badRequest("field \"decision\": want \"approve\" or \"reject\" (got %q)", req.Decision)
	}
	why, err := checkText("reason", orReason(req.Reason, req.Why), !approve)
	if err != nil {
		return ApprovalResult{}, err
	}
	ap, err := s.deps.Approver.Decide(id, approve, s.who(), why, s.now())
	switch {
	case errors.Is(err, engine.ErrUnknownApproval):
		return ApprovalResult{}, &controlError{http.StatusNotFound, err.Error()}
	case errors.Is(err, engine.ErrApprovalClosed):
		return ApprovalResult{}, &controlError{http.StatusConflict, err.Error()}
	case err != nil:
		return ApprovalResult{}, err
	}
	res := ApprovalResult{Approval: ap, Note: "rejected: it will not be carried out"}
	if approve {
		res.Note = "approved: queued for the next tick, through the governor's other checks (see GET /api/v1/actions)"
		if s.deps.Submitter != nil {
			if err := s.deps.Submitter.Submit(ap.Decision); err != nil {
				res.Note = "approved; the next decision for it will be carried out (not queued now: " + err.Error() + ")"
			}
		}
	}
	s.journal(AuditEntry{Via: c.via, Remote: c.remote, Op: opApproval, Target: ap.Decision.Target(),
		Detail: req.Decision + " " + ap.Decision.Action + " (approval " + ap.ID + ")", Why: why, Result: ap.Status})
	return res, nil
}

func (s *Server) apiApproval(w http.ResponseWriter, r *http.Request) {
	var req ApprovalRequest
	err := decodeBody(w, r, &req)
	var res ApprovalResult
	if err == nil {
		res, err = s.decideApproval(callerOf("api", r), r.PathValue("id"), req)
	}
	if err != nil {
		s.fail(w, opApproval, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiApprovals(w http.ResponseWriter, _ *http.Request) {
	list := ApprovalList{Approvals: []engine.Approval{}}
	if s.deps.Approver != nil {
		list.Approvals = append(list.Approvals, s.deps.Approver.Approvals(s.now())...)
	}
	writeJSON(w, http.StatusOK, list)
}

// pendingApprovals lists the approvals waiting for a person, for the pages.
func (s *Server) pendingApprovals() []engine.Approval {
	if s.deps.Approver == nil {
		return nil
	}
	var out []engine.Approval
	for _, ap := range s.deps.Approver.Approvals(s.now()) {
		if ap.Status == engine.ApprovalPending {
			out = append(out, ap)
		}
	}
	return out
}
