package main

import (
	"fmt"
	"os"
	"strings"
)

// apiToken returns the API token: ARES_API_TOKEN, or the content of the file named by
// ARES_API_TOKEN_FILE (e.g. a Docker or systemd secret), "" when neither is set. The token is
// never logged; the dashboard names it by the first 8 hex digits of its sha256.
func apiToken() (string, error) {
	tok, inEnv := os.LookupEnv("ARES_API_TOKEN")
	file := os.Getenv("ARES_API_TOKEN_FILE")
	if file == "" {
		return tok, nil
	}
	if inEnv {
		return "", fmt.Errorf("environment: set either ARES_API_TOKEN or ARES_API_TOKEN_FILE, not both")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("environment: ARES_API_TOKEN_FILE: read secret file: %w", err)
	}
	tok = strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("environment: ARES_API_TOKEN_FILE: %s is empty", file)
	}
	return tok, nil
}
