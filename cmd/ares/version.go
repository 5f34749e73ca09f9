package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the ARES version and the versions it was built with",
		Example: "  ares version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.OutOrStdout())
		},
	}
}

func runVersion(w io.Writer) error {
	opa := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/open-policy-agent/opa" {
				opa = d.Version
			}
		}
	}
	_, err := fmt.Fprintf(w, "ares %s\ngo %s %s/%s\nopa %s\nfacts document v1\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, opa)
	return err
}
