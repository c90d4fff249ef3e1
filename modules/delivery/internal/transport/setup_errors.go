package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/textproto"

	"github.com/wneessen/go-mail/smtp"
)

// connectError classifies a failed TCP connect: a host name that does not exist is
// the configuration's problem (smtp.host); anything else (refused, timed out,
// unreachable, a DNS server not answering) is an outage.
func connectError(cfg SMTPConfig, err error) *ServerError {
	addr := cfg.addr()
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return configError("smtp.host", addr, "connect", nil,
			"%s does not exist: %w", cfg.Host, dnsErr)
	}
	return outageError(addr, "connect", err)
}

// setupError classifies a failure of the session set-up at step (see conn.setup).
// What the configuration can fix is KindConfiguration naming the key, with a hint;
// everything else (4xx and 421 replies, I/O errors, timeouts, TLS handshake
// failures other than a certificate that does not verify) is an outage. serverName
// is the name the certificate was checked against.
func setupError(cfg SMTPConfig, serverName, step string, err error) *ServerError {
	addr := cfg.addr()
	if cert := certificateError(err); cert != nil {
		return configError("smtp.tls", addr, step, nil,
			"the certificate of %s does not verify for the host name %q: %w (the server needs a certificate for that name from an authority this machine trusts, or smtp.host must be a name on its certificate)",
			addr, serverName, cert)
	}
	r := replyOf(err)
	refused := r != nil && r.Code/100 == 5
	switch step {
	case "tls handshake":
		var notTLS tls.RecordHeaderError
		if errors.As(err, &notTLS) {
			return configError("smtp.tls", addr, step, nil,
				"%s does not speak TLS from the first byte (set smtp.tls to starttls or none, or smtp.port to the server's implicit-TLS port, usually 465)", addr)
		}
	case "greeting":
		if refused {
			return configError("smtp.host", addr, step, r,
				"%s refuses this client: %w (check that smtp.host and smtp.port name your mail server, and that it accepts mail from this machine)", addr, said(r))
		}
	case "ehlo":
		if refused {
			return configError("smtp.helo_name", addr, step, r,
				"%s refused EHLO %s: %w (set smtp.helo_name to this machine's DNS name)", addr, cfg.LocalName, said(r))
		}
	case "starttls":
		if errors.Is(err, errNoStartTLS) {
			return configError("smtp.tls", addr, step, nil,
				"%s does not offer STARTTLS (set smtp.tls to none or tls, or enable STARTTLS on the server)", addr)
		}
		if refused {
			return configError("smtp.tls", addr, step, r,
				"%s refused STARTTLS: %w (set smtp.tls to none or tls, or fix STARTTLS on the server)", addr, said(r))
		}
	case "auth":
		return authError(cfg, err, r)
	}
	return outageError(addr, step, err)
}

// authError classifies a failed AUTH: what the server lacks or refuses is the
// configuration's problem; a 4xx (454 temporary authentication failure, 421) or an
// I/O error is an outage.
func authError(cfg SMTPConfig, err error, r *textproto.Error) *ServerError {
	addr := cfg.addr()
	switch {
	case errors.Is(err, errNoAuthPlain):
		if cfg.TLS == TLSNone {
			return configError("smtp.username", addr, "auth", nil,
				"%s does not offer AUTH PLAIN over plain TCP (clear smtp.username if the server needs no login, or set smtp.tls to starttls: servers often offer AUTH only over TLS)", addr)
		}
		return configError("smtp.username", addr, "auth", nil,
			"%s does not offer AUTH PLAIN (clear smtp.username if the server needs no login)", addr)
	case errors.Is(err, smtp.ErrUnencrypted):
		return configError("smtp.tls", addr, "auth", nil,
			"refusing to send the password to %s over plain TCP (set smtp.tls to starttls or tls)", addr)
	case r == nil || r.Code/100 != 5:
		return outageError(addr, "auth", err)
	case r.Code == 534 || r.Code == 535 || r.Code == 538:
		return configError("smtp.password", addr, "auth", r,
			"%s refused the username and password: %w", addr, said(r))
	default:
		return configError("smtp.username", addr, "auth", r,
			"%s refused to log in as %q: %w", addr, cfg.Username, said(r))
	}
}

// certificateError returns the certificate verification failure in err's chain
// (unknown authority, a name the certificate does not carry, expired ...), or nil.
func certificateError(err error) error {
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return verify
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return err
	}
	return nil
}
