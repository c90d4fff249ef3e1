package app

import (
	"testing"

	"github.com/mailroom/mailroom/platform/config"
)

func TestTheConsoleURLOfAListenerOnEveryInterfaceIsOnLocalhost(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/",
		"0.0.0.0:8080":   "http://localhost:8080/",
		"[::]:8080":      "http://localhost:8080/",
		":8080":          "http://localhost:8080/",
		"[::1]:9000":     "http://[::1]:9000/",
	}
	for addr, want := range cases {
		if got := consoleURL(addr); got != want {
			t.Errorf("consoleURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestWhereMailGoesNamesTheServerAndItsTLSOrSaysNothingIsSent(t *testing.T) {
	cfg := &config.Config{}
	cfg.Delivery.Transport = config.TransportSMTP
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = "mail.example.com", 587, "starttls"
	if got, want := mailDestination(cfg), "smtp mail.example.com:587 starttls"; got != want {
		t.Errorf("smtp: %q, want %q", got, want)
	}
	cfg.Delivery.Transport = config.TransportCapture
	if got, want := mailDestination(cfg), "capture: rendered, not sent (set delivery.transport: smtp to send)"; got != want {
		t.Errorf("capture: %q, want %q", got, want)
	}
}
