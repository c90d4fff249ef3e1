package config_test

import (
	"testing"

	"github.com/mailroom/mailroom/platform/config"
)

func TestLogLevelTraceIsAccepted(t *testing.T) {
	cfg := mustLoad(t, config.Sources{Environ: []string{"MAILROOM_LOG_LEVEL=trace"}})
	if cfg.Log.Level != "trace" {
		t.Errorf("log.level = %q, want trace", cfg.Log.Level)
	}
}
