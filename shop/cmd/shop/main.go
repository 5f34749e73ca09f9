// Command shop runs one service of the ARES demo shop. One binary holds them all, so that
// every FROM-scratch image is the same file with a different command:
//
//	shop gateway|user|product|cart|order   serve (configuration: SHOP_* environment variables)
//	shop healthcheck                       exit 0 when /healthz on $SHOP_PORT answers 200
//	                                       (the Docker HEALTHCHECK of a FROM-scratch image)
//	shop fault leak|burn|latency|fail N    inject a fault into the service beside it through
//	shop fault reset|state                 127.0.0.1:$SHOP_ADMIN_PORT (ares chaos runs it with
//	                                       docker exec); prints the active faults as JSON
//	shop                                   serve $SHOP_SERVICE (how the per-service images start)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ares-sre/ares/shop/internal/config"
)

var version = "dev"

const usage = "usage: shop gateway|user|product|cart|order|healthcheck|version|fault"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 && os.Getenv("SHOP_SERVICE") != "" {
		args = []string{os.Getenv("SHOP_SERVICE")}
	}
	if len(args) == 0 || (len(args) != 1 && args[0] != "fault") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cfg, err := config.FromEnv(config.Env)
	if err != nil {
		fmt.Fprintln(stderr, "shop:", err)
		return 2
	}
	switch args[0] {
	case "healthcheck":
		return healthcheck(ctx, cfg, stderr)
	case "fault":
		return faultCmd(ctx, cfg, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	case "gateway", "user", "product", "cart", "order":
		if err := serve(ctx, args[0], cfg, stdout); err != nil {
			fmt.Fprintf(stderr, "shop %s: %v\n", args[0], err)
			return 1
		}
		return 0
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
}
