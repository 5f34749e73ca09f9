package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ares-sre/ares/shop/internal/config"
)

const faultUsage = "usage: shop fault leak MB_PER_S | burn CORES | latency MS | fail PERCENT | reset | state"

// faultCmd drives the fault-injection admin API of the service running beside it (on
// 127.0.0.1:$SHOP_ADMIN_PORT), so that `ares chaos` can inject faults with `docker exec`
// into a FROM-scratch image without publishing the admin port. It prints the faults now
// active as JSON.
func faultCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	params := map[string]string{"leak": "mb_per_s", "burn": "cores", "latency": "ms", "fail": "percent"}
	method, path := http.MethodGet, "/fault"
	switch {
	case len(args) == 1 && args[0] == "state":
	case len(args) == 1 && args[0] == "reset":
		method, path = http.MethodPost, "/fault/reset"
	case len(args) == 2 && params[args[0]] != "":
		if _, err := strconv.Atoi(args[1]); err != nil {
			fmt.Fprintf(stderr, "shop fault %s: the value must be an integer (got %q)\n%s\n", args[0], args[1], faultUsage)
			return 2
		}
		method, path = http.MethodPost, "/fault/"+args[0]+"?"+params[args[0]]+"="+args[1]
	default:
		fmt.Fprintln(stderr, faultUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(cfg.AdminPort) + path
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "shop fault:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "shop fault:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "shop fault: %s %s: %s: %s\n", method, path, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return 0
}
