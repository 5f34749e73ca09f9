// Package docs holds the documentation that the binary itself depends on.
package docs

import _ "embed"

// FactsSchema is the JSON Schema (draft-07) of the facts document, version 1: the binary
// validates facts against exactly the documented file, docs/facts.schema.json, described field
// by field in docs/facts.md.
//
//go:embed facts.schema.json
var FactsSchema []byte
