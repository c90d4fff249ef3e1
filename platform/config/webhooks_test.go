package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/platform/config"
)

func TestTheWebhooksDefaultsRetryForADayAndRefusePrivateTargets(t *testing.T) {
	w := mustLoad(t, config.Sources{}).Webhooks
	want := config.Webhooks{AllowPrivateTargets: false, Timeout: 5 * time.Second, Concurrency: 16,
		RetryInitial: 5 * time.Second, RetryMultiplier: 4, RetryMaxDelay: 6 * time.Hour, RetryFor: 24 * time.Hour,
		DisableAfterFailures: 20, DisableAfter: 24 * time.Hour}
	if w != want {
		t.Errorf("webhooks defaults %+v, want %+v", w, want)
	}
}

func TestInvalidWebhooksValuesAreRefusedNamingTheKey(t *testing.T) {
	for _, tc := range []struct {
		key   string
		value string
	}{
		{"webhooks.timeout", "0s"},
		{"webhooks.concurrency", "0"},
		{"webhooks.concurrency", "1025"},
		{"webhooks.retry_initial", "0s"},
		{"webhooks.retry_multiplier", "0.5"},
		{"webhooks.retry_max_delay", "1s"},
		{"webhooks.retry_for", "0s"},
		{"webhooks.disable_after_failures", "-1"},
		{"webhooks.disable_after", "-1s"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := config.Load(config.Sources{Flags: map[string]string{tc.key: tc.value}})
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Errorf("Load(%s=%s) = %v; want an error naming the key", tc.key, tc.value, err)
			}
		})
	}
	env := []string{"MAILROOM_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true", "MAILROOM_WEBHOOKS_DISABLE_AFTER_FAILURES=0"}
	w := mustLoad(t, config.Sources{Environ: env}).Webhooks
	if !w.AllowPrivateTargets || w.DisableAfterFailures != 0 {
		t.Errorf("from the environment: %+v", w)
	}
}
