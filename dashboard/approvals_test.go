package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/governor"
)

// approvalFixture is a dashboard over a real governor holding one pending approval (a
// restart of web/web-1, which the rules mark approval: required).
func approvalFixture(t *testing.T) (*fixture, *governor.Governor, string) {
	t.Helper()
	fx := newFixture(t, Options{Token: testToken})
	gov := governor.New(governor.Options{})
	gov.SetRules(engine.Rules{Approval: map[string]map[string]bool{"": {engine.ActRestart: true}}})
	f := engine.NewFacts(1, time.Now())
	f.Service("web").Replicas = []engine.Replica{{Name: "web-1", State: "exited"}, {Name: "web-2", State: "running"}}
	as := gov.Admit([]engine.Decision{{Action: engine.ActRestart, Service: "web", Replica: "web-1", Reason: "exited"}}, f, time.Now(), false)
	if len(as) != 1 || as[0].Approval == "" {
		t.Fatalf("no pending approval: %+v", as)
	}
	fx.srv.deps.Approver = gov
	return fx, gov, as[0].Approval
}

func approvalStatus(gov *governor.Governor, id string) string {
	for _, ap := range gov.Approvals(time.Now()) {
		if ap.ID == id {
			return ap.Status
		}
	}
	return "missing"
}

func TestApprovalsListed(t *testing.T) {
	fx, _, id := approvalFixture(t)
	w := fx.do(t, "GET", "/api/v1/approvals", "")
	var l ApprovalList
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &l) != nil || len(l.Approvals) != 1 ||
		l.Approvals[0].ID != id || l.Approvals[0].Status != engine.ApprovalPending || l.Approvals[0].Decision.Replica != "web-1" {
		t.Fatalf("GET /api/v1/approvals: %d %s", w.Code, w.Body)
	}
	// The overview lists it; the buttons only for a logged-in user.
	if w := fx.do(t, "GET", "/", ""); !strings.Contains(w.Body.String(), `data-id="`+id+`"`) || strings.Contains(w.Body.String(), "approve-btn") {
		t.Errorf("overview without session: pending listed=%v, buttons shown=%v", strings.Contains(w.Body.String(), id), strings.Contains(w.Body.String(), "approve-btn"))
	}
	if w := fx.do(t, "GET", "/", "", login(t, fx)); !strings.Contains(w.Body.String(), "approve-btn") || !strings.Contains(w.Body.String(), "reject-btn") {
		t.Errorf("overview with session shows no approve/reject buttons")
	}
}

// Refused decisions (no token, malformed or invalid bodies, unknown or closed ids) change
// nothing: the approval stays pending, nothing is submitted or audited.
func TestApprovalDecisionRefused(t *testing.T) {
	fx, gov, id := approvalFixture(t)
	before := fx.state()
	for _, c := range []struct {
		name, path, body string
		opts             []reqOpt
		code             int
	}{
		{"no token", "/api/v1/approvals/" + id, `{"decision": "approve"}`, nil, http.StatusUnauthorized},
		{"wrong token", "/api/v1/approvals/" + id, `{"decision": "approve"}`, []reqOpt{bearer("nope")}, http.StatusUnauthorized},
		{"malformed", "/api/v1/approvals/" + id, `{"decision": `, []reqOpt{bearer(testToken)}, http.StatusBadRequest},
		{"unknown field", "/api/v1/approvals/" + id, `{"decision": "approve", "force": true}`, []reqOpt{bearer(testToken)}, http.StatusBadRequest},
		{"bad decision", "/api/v1/approvals/" + id, `{"decision": "maybe"}`, []reqOpt{bearer(testToken)}, http.StatusBadRequest},
		{"reject without reason", "/api/v1/approvals/" + id, `{"decision": "reject"}`, []reqOpt{bearer(testToken)}, http.StatusBadRequest},
		{"unknown id", "/api/v1/approvals/0123456789abcdef", `{"decision": "approve"}`, []reqOpt{bearer(testToken)}, http.StatusNotFound},
	} {
		w := fx.do(t, "POST", c.path, c.body, c.opts...)
		if w.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.code)
		}
		if got := fx.state(); got != before {
			t.Errorf("%s changed state: %s → %s", c.name, before, got)
		}
		if st := approvalStatus(gov, id); st != engine.ApprovalPending {
			t.Fatalf("%s: approval is %s", c.name, st)
		}
	}
}

func TestApprovalApproveAndReject(t *testing.T) {
	fx, gov, id := approvalFixture(t)
	w := fx.do(t, "POST", "/api/v1/approvals/"+id, `{"decision": "approve", "reason": "looked at it"}`, bearer(testToken))
	var res ApprovalResult
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Approval.Status != engine.ApprovalApproved {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	if sub := fx.sub.Submitted(); len(sub) != 1 || sub[0].Target() != "web/web-1" || sub[0].Action != engine.ActRestart {
		t.Errorf("submitted = %+v, want the approved restart", sub)
	}
	if got := approvalStatus(gov, id); got != engine.ApprovalApproved {
		t.Errorf("governor's status = %s", got)
	}
	fx.srv.mu.RLock()
	audit := fx.srv.audit.newest(10, nil)
	fx.srv.mu.RUnlock()
	if len(audit) != 1 || audit[0].Op != opApproval || audit[0].Target != "web/web-1" || audit[0].Why != "looked at it" || audit[0].Result != engine.ApprovalApproved {
		t.Errorf("audit = %+v", audit)
	}
	// Decided once: a second decision conflicts and changes nothing.
	before := fx.state()
	if w := fx.do(t, "POST", "/api/v1/approvals/"+id, `{"decision": "reject", "reason": "too late"}`, bearer(testToken)); w.Code != http.StatusConflict {
		t.Errorf("second decision: %d %s, want 409", w.Code, w.Body)
	}
	if fx.state() != before {
		t.Error("a conflicting decision changed state")
	}

	// Rejecting through the dashboard form.
	fx2, gov2, id2 := approvalFixture(t)
	cookie := login(t, fx2)
	form := url.Values{"id": {id2}, "decision": {"reject"}, "reason": {"not now"}, "back": {"/"}, "csrf": {fx2.srv.csrf}}
	w = fx2.do(t, "POST", "/ui/approvals", form.Encode(), cookie)
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "msg=") {
		t.Fatalf("reject form: %d %s", w.Code, w.Header().Get("Location"))
	}
	if got := approvalStatus(gov2, id2); got != engine.ApprovalRejected {
		t.Errorf("after the reject form: %s", got)
	}
	if len(fx2.sub.Submitted()) != 0 {
		t.Error("a rejected action was submitted")
	}
}
