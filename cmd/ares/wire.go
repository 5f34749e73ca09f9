package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ares-sre/ares/engine/config"
)

// configFlags are the flags every command that reads ares.yaml shares.
type configFlags struct {
	path  string
	flags map[string]*pflag.Flag // config key → flag
}

func (c *configFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.path, "config", "c", "", "config file (default ./ares.yaml when present, else built-in defaults)")
	c.flags = map[string]*pflag.Flag{}
}

// bind makes a flag override a config key when it is set on the command line.
func (c *configFlags) bind(cmd *cobra.Command, flag, key string) {
	c.flags[key] = cmd.Flags().Lookup(flag)
}

func (c *configFlags) load() (config.Config, string, error) {
	return config.Load(config.Options{Path: c.path, Flags: c.flags})
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	log, _ := newLevelLogger(cfg, w)
	return log
}

// newLevelLogger is newLogger with its level adjustable while it runs (SIGHUP re-reads
// log.level).
func newLevelLogger(cfg config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	lv := &slog.LevelVar{}
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// dockerClient connects to the engine and checks that it answers, so that a missing daemon is
// reported at start with a hint instead of as a failing sensor on every tick.
func dockerClient(ctx context.Context, cfg config.Docker) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.APITimeout)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker: cannot reach the engine at %s: %w (is dockerd running? scripts/services.sh starts it)", cli.DaemonHost(), err)
	}
	return cli, nil
}

// untilDone is how long commands wait for background goroutines to finish at exit.
const untilDone = 5 * time.Second
