package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/shop/internal/config"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(config.Config) bool
		wantErr string
	}{
		{"defaults", nil, func(c config.Config) bool { return c == config.Default() }, ""},
		{"overrides", map[string]string{"SHOP_PORT": "9000", "SHOP_CACHE_TTL": "5s", "SHOP_PRODUCT_ADDR": "p:1"},
			func(c config.Config) bool {
				return c.Port == 9000 && c.CacheTTL == 5*time.Second && c.ProductAddr == "p:1"
			}, ""},
		{"bad port", map[string]string{"SHOP_PORT": "70000"}, nil, "SHOP_PORT: must be in 1..65535"},
		{"bad duration", map[string]string{"SHOP_SESSION_TTL": "-1s"}, nil, "SHOP_SESSION_TTL: must be > 0"},
		{"bad level", map[string]string{"SHOP_LOG_LEVEL": "loud"}, nil, "SHOP_LOG_LEVEL"},
		{"same ports", map[string]string{"SHOP_ADMIN_PORT": "8080"}, nil, "must differ from SHOP_PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Errorf("config %+v, err %v", c, err)
			}
		})
	}
}
