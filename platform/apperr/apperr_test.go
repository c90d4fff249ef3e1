package apperr

import (
	"strings"
	"testing"
)

func TestNotFoundEchoesAShortIDWholeAndALongOneCut(t *testing.T) {
	if got := NotFound("email", "abc").Message; got != `email "abc" not found` {
		t.Errorf("short id: %q", got)
	}
	exact := strings.Repeat("é", MaxEchoed)
	if got := NotFound("email", exact).Message; got != `email "`+exact+`" not found` {
		t.Errorf("an id of exactly %d characters was cut: %q", MaxEchoed, got)
	}
	long := strings.Repeat("é", 5000)
	want := `email "` + strings.Repeat("é", MaxEchoed) + `…" not found`
	if got := NotFound("email", long).Message; got != want {
		t.Errorf("a 5000-character id: %q, want %q", got, want)
	}
}
