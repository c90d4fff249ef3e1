package transport

import (
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mailroom/mailroom/modules/delivery/internal/render"
)

// TLS modes of SMTPConfig.TLS, the values of the smtp.tls setting.
const (
	// TLSNone speaks plain TCP.
	TLSNone = "none"
	// TLSStartTLS upgrades with STARTTLS and fails if the server does not offer it,
	// so a stripped capability cannot downgrade the connection.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
)

// Defaults applied by NewSMTP to zero fields, so a config naming only the server
// works.
const (
	// DefaultDialTimeout gives up on a server that does not accept the TCP
	// connection.
	DefaultDialTimeout = 10 * time.Second
	// DefaultCommandTimeout gives up on a server that stops answering; generous,
	// as servers may scan a message before answering its end of data.
	DefaultCommandTimeout = time.Minute
	// DefaultMaxIdleConns keeps a few sessions open between sends.
	DefaultMaxIdleConns = 4
	// DefaultIdleTimeout stays well under the idle limits servers apply (Postfix
	// drops an idle client after 300 s), so a reused session is rarely dead.
	DefaultIdleTimeout = 30 * time.Second
	// FallbackLocalName is the EHLO name when none is configured and the machine's
	// host name is not a valid EHLO domain.
	FallbackLocalName = "localhost"
)

// SMTPConfig says how to reach and talk to the mail server.
type SMTPConfig struct {
	// Host and Port locate the server.
	Host string
	Port int
	// Username and Password enable AUTH PLAIN when Username is set. The password
	// only travels over TLS or to a loopback host, unless AllowInsecureAuth.
	Username, Password string
	// TLS is TLSNone, TLSStartTLS or TLSImplicit; "" means TLSStartTLS, the
	// configuration default.
	TLS string
	// DialTimeout bounds the TCP connect. CommandTimeout bounds each command's
	// round trip (and the TLS handshake, and each 64 KiB of message data), so a
	// hung server cannot hold a send forever.
	DialTimeout, CommandTimeout time.Duration
	// MaxIdleConns is how many authenticated connections are kept open between
	// sends: 0 means DefaultMaxIdleConns, negative disables reuse. Set it to the
	// number of concurrent sends to avoid a connect per message.
	MaxIdleConns int
	// IdleTimeout is how long an idle connection may be reused; servers drop idle
	// clients after a while. 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// TLSConfig overrides the TLS client configuration, e.g. for tests trusting a
	// self-signed certificate. ServerName defaults to Host.
	TLSConfig *tls.Config
	// LocalName is the name sent with EHLO (the smtp.helo_name setting): a domain
	// name or an address literal such as "[192.0.2.1]". "" means DefaultLocalName():
	// the machine's host name. Servers check it, and some refuse one that is not
	// the machine's DNS name.
	LocalName string
	// AllowInsecureAuth lets AUTH PLAIN send the password over plain TCP to a
	// non-loopback host.
	AllowInsecureAuth bool
}

// Validate reports a configuration that can never work, so startup can refuse it
// instead of every send failing. Its error is a *ServerError of KindConfiguration
// naming the key, e.g. "smtp.port: 0 is not a TCP port"; Send and Probe return the
// same.
func (c SMTPConfig) Validate() error {
	invalid := func(key, format string, args ...any) error {
		return configError(key, "", "", nil, format, args...)
	}
	if c.Host == "" {
		return invalid("smtp.host", "empty")
	}
	if c.Port < 1 || c.Port > 65535 {
		return invalid("smtp.port", "%d is not a TCP port", c.Port)
	}
	switch c.TLS {
	case "", TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return invalid("smtp.tls", "%q is not one of none, starttls, tls", c.TLS)
	}
	if c.DialTimeout < 0 || c.CommandTimeout < 0 || c.IdleTimeout < 0 {
		return invalid("smtp.timeout", "negative timeout")
	}
	if c.LocalName != "" && !validLocalName(c.LocalName) {
		return invalid("smtp.helo_name", "%q is not a domain name or an address literal such as [192.0.2.1]", c.LocalName)
	}
	return nil
}

// DefaultLocalName returns the EHLO name used when SMTPConfig.LocalName is empty:
// the machine's host name (os.Hostname), or FallbackLocalName when that fails or
// is not a valid EHLO domain.
func DefaultLocalName() string {
	name, err := os.Hostname()
	name = strings.TrimSuffix(name, ".")
	if err != nil || !validLocalName(name) {
		return FallbackLocalName
	}
	return name
}

// validLocalName reports whether name may follow EHLO (RFC 5321 4.1.1.1): a domain
// of letters, digits and hyphens in dot-separated labels, or an address literal.
func validLocalName(name string) bool {
	if lit, ok := strings.CutPrefix(name, "["); ok {
		lit, ok = strings.CutSuffix(lit, "]")
		if v6, isV6 := strings.CutPrefix(lit, "IPv6:"); isV6 {
			addr, err := netip.ParseAddr(v6)
			return ok && err == nil && addr.Is6()
		}
		addr, err := netip.ParseAddr(lit)
		return ok && err == nil && addr.Is4()
	}
	return render.IsHostname(name)
}

// withDefaults fills the zero fields.
func (c SMTPConfig) withDefaults() SMTPConfig {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = DefaultMaxIdleConns
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.LocalName == "" {
		c.LocalName = DefaultLocalName()
	}
	return c
}

// addr returns "host:port".
func (c SMTPConfig) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// tlsConfig returns the TLS client configuration to use.
func (c SMTPConfig) tlsConfig() *tls.Config {
	var tc *tls.Config
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	return tc
}
