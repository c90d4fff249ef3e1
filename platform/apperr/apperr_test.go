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

func TestAnElementsErrorNamesItsFieldUnderTheElementsPath(t *testing.T) {
	orig := Invalid("to[0]", "not an email address")
	got, ok := As(Under(orig, "[3]"))
	if !ok || got.Field != "[3].to[0]" || got.Message != "[3].to[0]: not an email address" || got.Code != CodeInvalidField {
		t.Errorf("Under(Invalid) = %+v", got)
	}
	if orig.Field != "to[0]" {
		t.Errorf("Under changed the original error: %+v", orig)
	}
	bare, _ := As(Under(New(CodeForbidden, "no"), "[1]"))
	if bare.Field != "[1]" || bare.Message != "[1]: no" || bare.Code != CodeForbidden {
		t.Errorf("Under of an error without a field = %+v", bare)
	}
}
