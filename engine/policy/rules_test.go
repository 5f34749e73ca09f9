package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ares-sre/ares/engine"
)

func rulesDir(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	rego := "package ares\n\ndecisions contains {\"action\": \"notify\", \"service\": \"x\", \"reason\": \"r\"} if false\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	if data != "" {
		if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRulesFromPolicyData(t *testing.T) {
	set, err := Load(rulesDir(t, `{"ares": {"ladder": ["restart", "recycle", "notify"],
		"approval": {"defaults": {"scale_out": "required"}, "services": {"db": {"scale_out": "none", "restart": "required"}}}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules()
	if !reflect.DeepEqual(r.Ladder, []string{"restart", "recycle", "notify"}) {
		t.Errorf("ladder = %v", r.Ladder)
	}
	for _, c := range []struct {
		svc, action string
		want        bool
	}{{"api", "scale_out", true}, {"api", "restart", false}, {"db", "scale_out", false}, {"db", "restart", true}} {
		if got := r.NeedsApproval(c.svc, c.action); got != c.want {
			t.Errorf("NeedsApproval(%s, %s) = %v, want %v", c.svc, c.action, got, c.want)
		}
	}
	set, err = Load(rulesDir(t, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := set.Rules(); r.Ladder != nil || r.NeedsApproval("api", engine.ActRestart) {
		t.Errorf("rules without data = %+v", r)
	}
}

func TestShippedPackHasTheDefaultLadder(t *testing.T) {
	set, err := Load(filepath.Join("..", "..", "policies"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Rules().Ladder; !reflect.DeepEqual(got, []string{"restart", "recycle", "scale_out", "notify"}) {
		t.Errorf("shipped ladder = %v", got)
	}
}

func TestBadRulesNameTheField(t *testing.T) {
	for data, want := range map[string]string{
		`{"ares": {"ladder": ["restart", "reboot"]}}`:                          "data.ares.ladder[1]: unknown action",
		`{"ares": {"ladder": "restart"}}`:                                      "data.ares.ladder: want an array",
		`{"ares": {"ladder": ["restart", "restart"]}}`:                         "data.ares.ladder[1]: restart is listed twice",
		`{"ares": {"approval": {"defaults": {"restart": "yes"}}}}`:             `data.ares.approval.defaults.restart: want "required" or "none"`,
		`{"ares": {"approval": {"services": {"db": {"reboot": "required"}}}}}`: "data.ares.approval.services.db.reboot: unknown action",
		`{"ares": {"approval": {"sometimes": {}}}}`:                            "data.ares.approval.sometimes: unknown key",
	} {
		_, err := Load(rulesDir(t, data), Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", data, err, want)
		}
	}
}
