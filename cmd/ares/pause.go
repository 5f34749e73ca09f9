package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type pauseOpts struct {
	cf      configFlags
	api     string
	service string
	dur     time.Duration
	why     string
	resume  bool
}

func newPauseCmd() *cobra.Command  { return pauseCmd(false) }
func newResumeCmd() *cobra.Command { return pauseCmd(true) }

func pauseCmd(resume bool) *cobra.Command {
	o := pauseOpts{resume: resume}
	cmd := &cobra.Command{
		Use:   "pause --why TEXT",
		Short: "Stop automation (the kill switch): decisions are still computed and shown, none is carried out",
		Long: `pause asks a running ARES, through its API (dashboard.listen), to stop carrying out actions
on one service or, without --service, on every service. Decisions keep being computed, shown
and journaled with the verdict suppress. The call needs ARES_API_TOKEN (the same token the
daemon was started with) and is recorded with who and why.`,
		Example: `  # the kill switch, until resumed
  ARES_API_TOKEN=... ares pause --why "incident 4711: hands off"

  # one service for half an hour
  ARES_API_TOKEN=... ares pause --service cart --for 30m --why "manual migration"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := apiToken()
			if err != nil {
				return err
			}
			return runPause(cmd.Context(), o, token, cmd.OutOrStdout())
		},
	}
	if resume {
		cmd.Use = "resume"
		cmd.Short = "Lift a pause: automation carries out decisions again"
		cmd.Long = `resume lifts the pause of one service (--service) or the global pause (without it) on a
running ARES, through its API. Per-service pauses stay when the global one is lifted. Needs
ARES_API_TOKEN.`
		cmd.Example = `  ARES_API_TOKEN=... ares resume
  ARES_API_TOKEN=... ares resume --service cart --why "migration done"`
	}
	o.cf.register(cmd)
	cmd.Flags().StringVar(&o.api, "api", "", "ARES API base URL (default: http://<dashboard.listen>)")
	cmd.Flags().StringVar(&o.service, "service", "", "only this service (default: every service)")
	cmd.Flags().StringVar(&o.why, "why", "", "reason, recorded with the request")
	if !resume {
		cmd.Flags().DurationVar(&o.dur, "for", 0, "pause for this long (default: until resumed)")
		_ = cmd.MarkFlagRequired("why")
	}
	return cmd
}

func runPause(ctx context.Context, o pauseOpts, token string, w io.Writer) error {
	if token == "" {
		return errors.New("ARES_API_TOKEN is not set: pausing and resuming need the token ARES was started with")
	}
	base := o.api
	if base == "" {
		cfg, _, err := o.cf.load()
		if err != nil {
			return err
		}
		if cfg.Dashboard.Listen == "" {
			return errors.New("dashboard.listen is empty, so ARES serves no API: give --api")
		}
		base = "http://" + cfg.Dashboard.Listen
		if cfg.Dashboard.TLSCert != "" {
			base = "https://" + cfg.Dashboard.Listen
		}
	}
	body := map[string]string{"service": o.service, "why": o.why}
	path := "/api/v1/resume"
	if !o.resume {
		path = "/api/v1/pause"
		if o.dur > 0 {
			body["for"] = o.dur.String()
		}
	}
	raw, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("--api %q: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach ARES at %s: %w (is ares run up, with dashboard.listen?)", base, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(answer, &e) == nil && e.Error != "" {
			return fmt.Errorf("ARES refused: %s (%s)", e.Error, resp.Status)
		}
		return fmt.Errorf("ARES refused: %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	var res struct {
		Paused map[string]string `json:"paused"`
	}
	_ = json.Unmarshal(answer, &res)
	what := "every service"
	if o.service != "" {
		what = o.service
	}
	verb := "paused"
	if o.resume {
		verb = "resumed"
	}
	fmt.Fprintf(w, "%s %s\n", verb, what)
	if len(res.Paused) == 0 {
		fmt.Fprintln(w, "no pause in force")
	}
	for svc, until := range res.Paused {
		if svc == "" {
			svc = "(every service)"
		}
		if until == "" || strings.HasPrefix(until, "0001-") {
			until = "until resumed"
		}
		fmt.Fprintf(w, "paused: %s %s\n", svc, until)
	}
	return nil
}
