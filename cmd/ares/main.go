// Command ares is the Autonomous Reliability Engineering System: it watches containerized
// services, evaluates Rego healing policies over what it sees, and heals through the Docker
// Engine API. `ares --help` lists the commands; each has examples in its own help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	engine.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd(os.Stdin, os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ares:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ares",
		Short: "Autonomous Reliability Engineering System: policy-driven self-healing for containers",
		Long: `ARES keeps containerized services alive without a human in the loop.

Every tick its sensors write one JSON facts document (docs/facts.md), the Rego policies in
policies/ turn it into decisions, a governor filters them and actuators carry them out
through the Docker Engine API. Only containers labelled ares.enable=true are ever touched.

Start with a dry run to see what ARES would do, without doing it:
  ares run --dry-run`,
		Example: `  # is everything a first run needs in place?
  ares doctor

  # see what ARES would do, without doing it
  ares run --dry-run

  # every command has its own examples
  ares run --help`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newPauseCmd(), newResumeCmd(), newEvalCmd(), newFactsCmd(), newDetectCmd(), newVersionCmd(),
		newIncidentsCmd(),
		newAuditCmd(),
		newActionsCmd(),
		newReplayCmd(),
		newChaosCmd(),
		newDoctorCmd(),
		newCompletionCmd(),
	)
	return root
}
