package transport

import (
	"net"
	"testing"
)

// A name lookup cannot be made to fail the same way on every machine, so the
// classification of its errors is tested on the errors themselves.
func TestAHostNameThatDoesNotExistIsAConfigurationErrorAndAFailingLookupAnOutage(t *testing.T) {
	cfg := SMTPConfig{Host: "mx.invalid", Port: 25}
	lookup := func(dnsErr *net.DNSError) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: dnsErr}
	}

	err := connectError(cfg, lookup(&net.DNSError{Err: "no such host", Name: "mx.invalid", IsNotFound: true}))
	if err.Kind != KindConfiguration || err.Key != "smtp.host" {
		t.Fatalf("err = %v (kind %v key %q), want a configuration error naming smtp.host", err, err.Kind, err.Key)
	}
	if want := "smtp.host: mx.invalid does not exist: lookup mx.invalid: no such host"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}

	err = connectError(cfg, lookup(&net.DNSError{Err: "server misbehaving", Name: "mx.invalid", IsTemporary: true}))
	if err.Kind != KindOutage || err.Step != "connect" {
		t.Fatalf("err = %v (kind %v), want an outage at connect: the name may well exist", err, err.Kind)
	}
}
