package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// forbiddenBuiltins are the OPA built-in functions a policy may not call: they reach outside
// the facts document, to the network or to ARES's own process (opa.runtime exposes its
// environment, where the API token may be). A policy's one input is the facts; its one
// output is decisions. Calling one is a compile error naming the file and line.
var forbiddenBuiltins = map[string]bool{
	"http.send":          true,
	"opa.runtime":        true,
	"net.lookup_ip_addr": true,
}

// capabilities are OPA's built-ins of this version without the forbidden ones.
var capabilities = sync.OnceValue(func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	kept := make([]*ast.Builtin, 0, len(c.Builtins))
	for _, b := range c.Builtins {
		if !forbiddenBuiltins[b.Name] {
			kept = append(kept, b)
		}
	}
	c.Builtins = kept
	return c
})
