package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                      "",
		"postgres://ares:Pa55w0rd@db:5432/ares": "postgres://ares:***@db:5432/ares",
		"postgres://ares:Pa55w0rd@db:5432/ares?sslmode=require&password=Pa55w0rd": "postgres://ares:***@db:5432/ares?***",
		"postgresql://db/ares":                                "postgresql://db/ares",
		"host=db user=ares password=Pa55w0rd dbname=ares":     "host=db user=ares password=*** dbname=ares",
		"https://hooks.example.com/services/T0/B0/XyZsecret":  "https://hooks.example.com/***",
		"https://hooks.example.com/hook?token=XyZsecret":      "https://hooks.example.com/***",
		"https://bot:XyZsecret@hooks.example.com:8443/notify": "https://bot:***@hooks.example.com:8443/***",
		"http://127.0.0.1:9000/":                              "http://127.0.0.1:9000/",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(RedactURL(in), "secret") || strings.Contains(RedactURL(in), "Pa55w0rd") {
			t.Errorf("RedactURL(%q) = %q still holds the secret", in, RedactURL(in))
		}
	}
}

// Secrets can come from files named by ARES_<KEY>_FILE, so that they are in neither the
// environment nor ares.yaml.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "dsn")
	hookFile := filepath.Join(dir, "hook")
	if err := os.WriteFile(dsnFile, []byte("postgres://ares:FromFile1@db:5432/ares\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hookFile, []byte("https://hooks.example.com/T/FromFile2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := Load(Options{Env: []string{"ARES_JOURNAL_BACKEND=postgres",
		"ARES_JOURNAL_DSN_FILE=" + dsnFile, "ARES_NOTIFY_WEBHOOK_URL_FILE=" + hookFile, "ARES_API_TOKEN_FILE=/nonexistent"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Journal.DSN != "postgres://ares:FromFile1@db:5432/ares" || cfg.Notify.WebhookURL != "https://hooks.example.com/T/FromFile2" {
		t.Errorf("from files: dsn %q, webhook %q", cfg.Journal.DSN, cfg.Notify.WebhookURL)
	}

	_, _, err = Load(Options{Env: []string{"ARES_JOURNAL_DSN_FILE=" + filepath.Join(dir, "missing")}})
	if err == nil || !strings.Contains(err.Error(), "ARES_JOURNAL_DSN_FILE") {
		t.Errorf("missing secret file: %v", err)
	}
	_, _, err = Load(Options{Env: []string{"ARES_JOURNAL_DSN=postgres://x@db/ares", "ARES_JOURNAL_DSN_FILE=" + dsnFile}})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both set: %v", err)
	}
}

// A bad webhook URL is named in the error without its token.
func TestBadWebhookErrorHidesToken(t *testing.T) {
	_, _, err := Load(Options{Env: []string{"ARES_NOTIFY_WEBHOOK_URL=ftp://hooks.example.com/T/Tok3nInPath"}})
	if err == nil || !strings.Contains(err.Error(), "notify.webhook_url") {
		t.Fatalf("want a notify.webhook_url error, got %v", err)
	}
	if strings.Contains(err.Error(), "Tok3nInPath") {
		t.Errorf("error shows the token: %v", err)
	}
}
