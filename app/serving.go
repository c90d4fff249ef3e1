package app

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/mailroom/mailroom/platform/config"
)

// logServing writes the line that says the app is up: its role, instance, the
// HTTP address and, for a person starting it, where the console is (console, when
// the role serves the API) and where mail goes (mail, when the role delivers).
func (a *App) logServing() {
	args := []any{"modules", a.cfg.Modules, "instance_id", a.instanceID, "addr", a.Addr()}
	if servesAPI(a.modules) {
		args = append(args, "console", consoleURL(a.Addr()))
	}
	if a.delivers() {
		args = append(args, "mail", mailDestination(a.cfg))
	}
	args = append(args, "broker", a.cfg.Broker.Kind, "transport", a.cfg.Delivery.Transport, "db", a.cfg.DB.Path)
	a.log.Info("mailroom serving", args...)
}

// delivers reports whether this instance runs the delivery module: whether it
// sends mail.
func (a *App) delivers() bool {
	for _, m := range a.modules {
		if m.Name() == "delivery" {
			return true
		}
	}
	return false
}

// consoleURL is the address of the operator console of an app listening on addr
// (host:port): "http://127.0.0.1:8080/". A listener on every interface (0.0.0.0,
// [::]) is shown as localhost, the address that reaches it from the same host.
func consoleURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() || host == "" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// mailDestination says in a few words where cfg's delivery sends mail: "smtp
// mail.example.com:587 starttls" (the server and smtp.tls), or, for the capture
// transport, that nothing is sent: each message is rendered and shown at GET
// /api/emails/{id}/raw only.
func mailDestination(cfg *config.Config) string {
	if cfg.Delivery.Transport != config.TransportSMTP {
		return cfg.Delivery.Transport + ": rendered, not sent (set delivery.transport: smtp to send)"
	}
	return fmt.Sprintf("smtp %s %s", net.JoinHostPort(cfg.SMTP.Host, strconv.Itoa(cfg.SMTP.Port)), cfg.SMTP.TLS)
}
