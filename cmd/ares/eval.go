package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/policy"
	"github.com/ares-sre/ares/engine/schema"
)

type evalOpts struct {
	facts    string // file, or "-" for stdin
	policies string
	query    string
	output   string
	insecure bool // --insecure-policy-dir
}

func newEvalCmd() *cobra.Command {
	o := evalOpts{}
	cmd := &cobra.Command{
		Use:   "eval --facts FILE",
		Short: "Evaluate the policies once against a saved facts document and print the decisions",
		Long: `eval runs one policy evaluation over a facts document (docs/facts.md) and prints the
decisions the policies would make, without touching any container. The document is checked
against docs/facts.schema.json first; every problem names its place in the document.

Capture real situations with 'ares facts -o json > case.json', edit them, and keep them as
test fixtures for your policies.

Exit status: 0 on success (with or without decisions), 1 when the input or the policies are
bad or the policies return invalid decisions.`,
		Example: `  # what would the default pack do with this document?
  ares eval --facts case.json

  # a policy under development, machine-readable output
  ares eval --facts case.json --policies ./my-policies -o json

  # from a pipe
  ares facts -o json | ares eval --facts -

  # a policy checkout others can write (refused by default), for development only
  ares eval --facts case.json --policies ./scratch --insecure-policy-dir`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.facts, "facts", "", "facts document (JSON) to evaluate, or - for standard input (required)")
	cmd.Flags().StringVar(&o.policies, "policies", "policies", "directory of .rego files and data.json")
	cmd.Flags().StringVar(&o.query, "query", "data.ares.decisions", "Rego query whose result is the decision set")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&o.insecure, "insecure-policy-dir", false, "load policies even from a directory others can write (development only)")
	_ = cmd.MarkFlagRequired("facts")
	return cmd
}

// evalResult is the -o json output of ares eval.
type evalResult struct {
	PolicyRev string                    `json:"policy_rev"`
	Decisions []engine.Decision         `json:"decisions"`
	Rejected  []engine.RejectedDecision `json:"rejected"`
}

func runEval(ctx context.Context, o evalOpts, stdin io.Reader, w, errw io.Writer) error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	name := o.facts
	var raw []byte
	var err error
	if o.facts == "-" {
		name = "<stdin>"
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(o.facts)
	}
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	f, err := decodeFacts(name, raw)
	if err != nil {
		return err
	}
	set, err := policy.Load(o.policies, policy.Options{Query: o.query, InsecureDir: o.insecure})
	if err != nil {
		return err
	}
	ds, rejected, err := set.Evaluate(ctx, f)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if ds == nil {
		ds = []engine.Decision{}
	}
	if rejected == nil {
		rejected = []engine.RejectedDecision{}
	}
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(evalResult{PolicyRev: set.Revision(), Decisions: ds, Rejected: rejected}); err != nil {
			return err
		}
	} else {
		if len(ds) == 0 {
			fmt.Fprintf(w, "no decisions (policy %s, %d services)\n", set.Revision(), len(f.Services))
		}
		for _, d := range ds {
			fmt.Fprintf(w, "%-9s  %s  %s\n", d.Action, d.Target(), d.Reason)
		}
	}
	if len(rejected) > 0 {
		for _, r := range rejected {
			fmt.Fprintf(errw, "rejected decision %s: %s\n", r.Raw, r.Error)
		}
		return &exitError{code: 1, err: fmt.Errorf("eval: the policies in %s returned %d invalid decision(s); they would never be executed", o.policies, len(rejected))}
	}
	return nil
}

// decodeFacts validates raw against the facts schema and decodes it. The summaries are derived
// again from the replicas, exactly as a live tick derives them.
func decodeFacts(name string, raw []byte) (*engine.Facts, error) {
	if err := schema.Validate(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var f engine.Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: facts: %w", name, err)
	}
	if f.Services == nil {
		f.Services = map[string]*engine.Service{}
	}
	if f.Sensors == nil {
		f.Sensors = map[string]engine.SensorStatus{}
	}
	if f.Alerts == nil {
		f.Alerts = []engine.Alert{}
	}
	f.Summarize()
	return &f, nil
}
