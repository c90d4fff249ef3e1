package domain

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheckAllowedFromNormalisesDomainsAndAddresses(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"none is none (any sender)", nil, nil},
		{"an empty list is none", []string{}, nil},
		{"a domain is kept, in lower case", []string{"Example.COM"}, []string{"example.com"}},
		{"an address is kept, in lower case", []string{"Team@Example.com"}, []string{"team@example.com"}},
		{"a one-label domain is a domain", []string{"localhost"}, []string{"localhost"}},
		{"repeats are dropped, first seen first", []string{"b.example", "a.example", "B.example"}, []string{"b.example", "a.example"}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckAllowedFrom(tt.in)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CheckAllowedFrom(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckAllowedFromRefusesWhatIsNeitherADomainNorAnAddressByIndex(t *testing.T) {
	cases := []struct {
		name  string
		entry string
	}{
		{"an empty entry", ""},
		{"a display name", "Team <team@example.com>"},
		{"a wildcard", "*.example.com"},
		{"a leading dot", ".example.com"},
		{"an empty local part", "@example.com"},
		{"an empty domain", "team@"},
		{"two @", "a@b@example.com"},
		{"a space", "example .com"},
		{"a CR LF", "example.com\r\nx"},
		{"a quoted local part", `"a b"@example.com`},
		{"a label over 63 characters", strings.Repeat("a", 64) + ".example"},
		{"a local part over 64 characters", strings.Repeat("a", 65) + "@example.com"},
		{"a non-ASCII domain", "exämple.com"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckAllowedFrom([]string{"ok.example", tt.entry})
			var bad AllowedFromError
			if !errors.As(err, &bad) || bad.Index != 1 {
				t.Errorf("CheckAllowedFrom(%q) = %v, want an AllowedFromError at index 1", tt.entry, err)
			}
		})
	}
	t.Run("more than the most senders a key may have", func(t *testing.T) {
		many := make([]string, MaxAllowedFrom+1)
		for i := range many {
			many[i] = "example.com"
		}
		if _, err := CheckAllowedFrom(many); err == nil {
			t.Errorf("CheckAllowedFrom of %d entries = nil, want an error", len(many))
		}
	})
}
