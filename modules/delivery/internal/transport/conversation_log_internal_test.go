package transport

import "testing"

func TestTheQueueIDIsReadFromTheCommonRepliesToTheEndOfData(t *testing.T) {
	cases := []struct{ reply, id string }{
		{"2.0.0 Ok: queued as 4B2C1D2E3F", "4B2C1D2E3F"},                   // Postfix
		{"OK id=1uXyZa-000abc-12", "1uXyZa-000abc-12"},                     // Exim
		{"2.0.0 OK: queued as <a1b2.c3@mx.example>", "a1b2.c3@mx.example"}, // angle brackets dropped
		{"2.0.0 OK: queued", ""},                                           // smtptest, go-smtp's default: no id
		{"2.6.0 <x@y> [InternalId=123] Queued mail for delivery", ""},      // "InternalId" is not "id="
		{"OK", ""},
	}
	for _, tc := range cases {
		if got := queueID(tc.reply); got != tc.id {
			t.Errorf("queueID(%q) = %q, want %q", tc.reply, got, tc.id)
		}
	}
}
