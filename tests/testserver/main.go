// Command testserver is the tiny HTTP service that ARES's integration tests run in FROM-scratch
// containers. It answers /health, reports who answered on /, and can be made unhealthy, slow,
// leaky or dead on request so that tests can watch ARES heal it. It exports Prometheus metrics on
// /metrics and writes JSON log lines on request (observe.go).
//
//	testserver              serve on $PORT (default 8080) of $HOST (default every address;
//	                        HOST=127.0.0.1 with --network host); with CRASH_AFTER=500ms it exits
//	                        with code 3 that long after each start (a crash loop); with SICK=1
//	                        /health answers 503 from the start (a fault a restart does not cure)
//	testserver healthcheck  exit 0 when /health answers 200 (for a Docker HEALTHCHECK)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(port))
	}
	if err := serve(port); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func healthcheck(port string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/health")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func serve(port string) error {
	host, _ := os.Hostname()
	var sick atomic.Bool
	sick.Store(os.Getenv("SICK") != "") // SICK=1: unhealthy from the start, and after every restart
	var mu sync.Mutex
	var leaked [][]byte
	var hits atomic.Int64

	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, host)
	})
	mux.HandleFunc("/hits", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, hits.Load())
	})
	// /sick makes /health fail; /well makes it pass again.
	mux.HandleFunc("/sick", func(w http.ResponseWriter, _ *http.Request) { sick.Store(true); fmt.Fprintln(w, "sick") })
	mux.HandleFunc("/well", func(w http.ResponseWriter, _ *http.Request) { sick.Store(false); fmt.Fprintln(w, "well") })
	// /exit?code=N ends the process with exit code N after answering.
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintln(w, "bye")
		go func() { time.Sleep(20 * time.Millisecond); os.Exit(code) }()
	})
	// /leak?mb=N allocates and keeps N MiB.
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		b := make([]byte, mb<<20)
		for i := range b {
			b[i] = byte(i)
		}
		mu.Lock()
		leaked = append(leaked, b)
		n := len(leaked)
		mu.Unlock()
		fmt.Fprintln(w, "leaked", n)
	})

	// /fetch?url=U fetches U from inside the container (a fresh connection each time) and
	// returns its body: tests use it to reach other containers by their network alias.
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})

	if d, err := time.ParseDuration(os.Getenv("CRASH_AFTER")); err == nil {
		go func() { time.Sleep(d); fmt.Fprintln(os.Stderr, "testserver: crashing as asked"); os.Exit(3) }()
	}

	srv := &http.Server{Addr: net.JoinHostPort(os.Getenv("HOST"), port), Handler: observed(mux), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
