package docs_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ares-sre/ares/docs"
	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
)

func TestFactsSchemaIsDraft07ForVersion1(t *testing.T) {
	var s struct {
		Schema     string `json:"$schema"`
		Properties struct {
			Version struct {
				Const int `json:"const"`
			} `json:"version"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(docs.FactsSchema, &s); err != nil {
		t.Fatalf("facts.schema.json: %v", err)
	}
	if s.Schema != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %q, want draft-07 (OPA's json.match_schema supports draft-04/06/07)", s.Schema)
	}
	if s.Properties.Version.Const != engine.FactsVersion {
		t.Errorf("version const = %d, want engine.FactsVersion %d", s.Properties.Version.Const, engine.FactsVersion)
	}
}

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestFactsMarkdown keeps facts.md honest: its example documents match the schema and its
// data.json block shows the pack's actual defaults.
func TestFactsMarkdown(t *testing.T) {
	md, err := os.ReadFile("facts.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples, configs int
	for _, m := range jsonBlock.FindAllSubmatch(md, -1) {
		block := m[1]
		switch {
		case strings.Contains(string(block), `"version"`):
			examples++
			if err := schema.Validate(block); err != nil {
				t.Errorf("facts.md example does not match the schema:\n%v", err)
			}
		case strings.Contains(string(block), `"defaults"`):
			configs++
			assertSameDefaults(t, block)
		}
	}
	if examples == 0 || configs == 0 {
		t.Fatalf("facts.md: found %d example documents and %d config blocks, want at least one of each", examples, configs)
	}
}

func assertSameDefaults(t *testing.T, block []byte) {
	t.Helper()
	type config struct {
		Ares struct {
			Config struct {
				Defaults map[string]any `json:"defaults"`
			} `json:"config"`
		} `json:"ares"`
	}
	var doc, pack config
	if err := json.Unmarshal(block, &doc); err != nil {
		t.Fatalf("facts.md config block: %v", err)
	}
	raw, err := os.ReadFile("../policies/data.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &pack); err != nil {
		t.Fatalf("policies/data.json: %v", err)
	}
	if !reflect.DeepEqual(doc.Ares.Config.Defaults, pack.Ares.Config.Defaults) {
		t.Errorf("facts.md shows defaults %v, policies/data.json has %v", doc.Ares.Config.Defaults, pack.Ares.Config.Defaults)
	}
}
