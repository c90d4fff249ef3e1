package domain

import (
	"strings"
	"testing"
)

func TestNewSecretMakesDistinctKeysOfOneShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		prefix, ok := PrefixOf(s)
		if !ok || len(s) != 46 || prefix != s[:11] || !strings.HasPrefix(s, Marker) {
			t.Fatalf("key %q: PrefixOf = %q, %v; want a 46-character mr_ key with an 11-character prefix", s, prefix, ok)
		}
		if seen[s] || seen[prefix] {
			t.Fatalf("key or prefix %q made twice", s)
		}
		seen[s], seen[prefix] = true, true
	}
}

func TestPrefixOfRefusesWhatIsNotAKey(t *testing.T) {
	for _, s := range []string{"", "mr_", "mr_short", "xx_" + strings.Repeat("a", 43), "mr_" + strings.Repeat("a", 44)} {
		if p, ok := PrefixOf(s); ok {
			t.Errorf("PrefixOf(%q) = %q, true; want false", s, p)
		}
	}
}

func TestCheckName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"billing", true},
		{"서비스 키", true},
		{strings.Repeat("n", MaxNameLen), true},
		{"", false},
		{"   ", false},
		{strings.Repeat("n", MaxNameLen+1), false},
		{"a\nb", false},
		{"a\x00b", false},
		{"bad \xff utf8", false},
	}
	for _, tt := range cases {
		if err := CheckName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
