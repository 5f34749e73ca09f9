package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/engine/journal"
)

// listOpts are the flags of the commands that list journal records (actions, incidents,
// audit): the config, how far back, one service, and the output format.
type listOpts struct {
	cf      configFlags
	since   time.Duration
	service string
	output  string
}

func (o *listOpts) register(cmd *cobra.Command, since time.Duration, serviceHelp string) {
	o.cf.register(cmd)
	cmd.Flags().DurationVar(&o.since, "since", since, "how far back")
	cmd.Flags().StringVar(&o.service, "service", "", serviceHelp)
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
}

// journalList describes one listing: what fetch reads from the journal, called name in
// errors and what when there is nothing, printed as a table of header and row(record).
type journalList[T any] struct {
	name, what, header string
	fetch              func(context.Context, journal.Store, journal.Query) ([]T, error)
	row                func(T) []string
}

// print opens the journal and prints the records of the last o.since: JSON (an empty list is
// []), or a table, or a line saying there are none.
func (l journalList[T]) print(ctx context.Context, o listOpts, w io.Writer) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	j, err := openJournal(ctx, o.cf)
	if err != nil {
		return err
	}
	defer j.Close()
	recs, err := l.fetch(ctx, j, journal.Query{Since: time.Now().Add(-o.since), Service: o.service})
	if err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	if o.output == "json" {
		if recs == nil {
			recs = []T{}
		}
		return writeJSON(w, recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(w, "no %s in the last %s\n", l.what, o.since)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, l.header)
	for _, r := range recs {
		fmt.Fprintln(tw, strings.Join(l.row(r), "\t"))
	}
	return tw.Flush()
}
